"""The validated IR of every example, as `mlopsc check --emit-ir` prints it, against a golden
JSON file. A change to the grammar, the passes or the IR models shows up here as a readable diff.

UPDATE_GOLDEN=1 rewrites the golden files.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "ir"
EXAMPLES = [p.relative_to(ROOT).as_posix() for p in specs_in(ROOT / "specs")]


def emit_ir(spec: str) -> str:
    exe = Path(sys.executable).with_name("mlopsc")
    done = subprocess.run([exe, "check", spec, "--emit-ir"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("spec", EXAMPLES)
def test_ir_of_every_example_matches_its_golden_file(spec):
    text = emit_ir(spec)
    ir = json.loads(text)
    assert ir["source_file"] == spec and len(ir["spec_hash"]) == 64
    golden = GOLDEN / (Path(spec).stem + ".json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {spec}; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def test_every_example_is_in_canonical_layout():
    exe = Path(sys.executable).with_name("mlopsc")
    done = subprocess.run([exe, "fmt", "--check", *EXAMPLES], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
