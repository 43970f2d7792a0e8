"""The README's example spec is valid: a user's first copy-paste must pass `mlopsc check`."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_passes_check(tmp_path):
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^pipeline \w+ \{\n.*?^\}$", readme, re.S | re.M)
    assert match, "the README shows no spec"
    spec = tmp_path / "example.mlops"
    spec.write_text(match.group(0) + "\n")
    exe = Path(sys.executable).with_name("mlopsc")
    done = subprocess.run([exe, "check", str(spec)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "0 errors, 0 warnings" in done.stderr
