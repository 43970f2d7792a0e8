"""Golden error files: every `tests/errors/NAME.mlops` is checked with `mlopsc check` in a
subprocess from the repo root, and its stderr must equal `tests/errors/NAME.expected` exactly.

A first line `# args: --param x=1` passes extra arguments. The exit code must be 1 when the
expected output holds an error, else 0. Rewrite the expected files with UPDATE_GOLDEN=1.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parent.parent
CASES = specs_in(ROOT / "tests" / "errors")
RUN_CLI = "import sys; from mlopsc.backends.cli import main; sys.argv[0] = 'mlopsc'; main()"


def run_check(case: Path) -> subprocess.CompletedProcess:
    first = case.read_text(encoding="utf-8").partition("\n")[0]
    extra = shlex.split(first.removeprefix("# args:")) if first.startswith("# args:") else []
    rel = case.relative_to(ROOT).as_posix()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-c", RUN_CLI, "check", rel, *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_there_are_enough_cases():
    assert len([c for c in CASES if not c.name.startswith("syntax_")]) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_error_output(case: Path):
    done = run_check(case)
    expected_file = case.with_suffix(".expected")
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(done.stderr, encoding="utf-8")
    assert expected_file.exists(), f"{expected_file.name} is missing: run with UPDATE_GOLDEN=1 and review it"
    expected = expected_file.read_text(encoding="utf-8")
    assert done.stderr == expected
    assert "Traceback" not in done.stderr
    assert done.returncode == (1 if "error[" in expected else 0), done.stderr
