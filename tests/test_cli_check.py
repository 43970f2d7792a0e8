"""`mlopsc check`, `graph` and `fmt` as a user runs them: whole processes, real files, exit codes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlopsc.compiler import ir

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/penguins.mlops"
RUN_CLI = "import sys; from mlopsc.backends.cli import main; sys.argv[0] = 'mlopsc'; main()"


def mlopsc(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN_CLI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "NO_COLOR": "1", **(env or {})})


def test_clean_spec_exits_0_with_a_summary():
    done = mlopsc("check", SPEC)
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == "0 errors, 0 warnings in 1 file\n"


def test_emit_ir_prints_the_validated_pipeline():
    done = mlopsc("check", SPEC, "--emit-ir")
    assert done.returncode == 0, done.stderr
    pipeline = ir.Pipeline.model_validate_json(done.stdout)
    assert pipeline.name == "penguins"
    assert all(r.port for s in pipeline.steps for _, r in s.refs())
    assert pipeline.step("release").registry == "penguins-species"


def test_param_overrides_reach_the_ir():
    done = mlopsc("check", SPEC, "--emit-ir", "--param", "test_size=0.3")
    params = {p["name"]: p["default"] for p in json.loads(done.stdout)["params"]}
    assert params["test_size"] == 0.3


def test_several_files_report_together(tmp_path):
    bad = tmp_path / "bad.mlops"
    text = Path(ROOT / SPEC).read_text().replace("model = species_model\n    data", "model = species_modle\n    data")
    bad.write_text(text)
    line = next(n for n, source in enumerate(text.splitlines(), 1) if "species_modle" in source)
    col = text.splitlines()[line - 1].index("species_modle") + 1
    done = mlopsc("check", SPEC, str(bad))
    assert done.returncode == 1
    assert f"{bad}:{line}:{col}: error[E203]: evaluate species_eval: 'model' refers to an unknown step 'species_modle'" \
        in done.stderr
    assert "  hint: did you mean 'species_model'?" in done.stderr
    assert done.stderr.endswith("1 error, 0 warnings in 2 files\n")


@pytest.mark.parametrize("args, message", [
    (["check", "specs/nope.mlops"], "does not exist"),
    (["check"], "Missing argument"),
    (["check", SPEC, "--param", "test_size"], "expected NAME=VALUE"),
    (["graph", SPEC, "--format", "png"], "give a file with -o"),
    (["graph", SPEC, "--format", "jpeg"], "'jpeg' is not one of"),
])
def test_usage_errors_exit_2(args, message):
    done = mlopsc(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_unreadable_input_is_a_spec_error_not_a_traceback(tmp_path):
    binary = tmp_path / "binary.mlops"
    binary.write_bytes(b"\xff\xfe\x00pipeline")
    done = mlopsc("check", str(binary))
    assert done.returncode == 1 and "error[E001]: cannot read" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_everywhere():
    for command in ([], ["check"], ["graph"], ["fmt"]):
        done = mlopsc(*command, "--help")
        assert done.returncode == 0 and "Usage:" in done.stdout


def test_graph_mermaid_and_dot_on_stdout():
    mermaid = mlopsc("graph", SPEC)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart LR\n")
    assert "penguins_split -->|train| species_model" in mermaid.stdout
    dot = mlopsc("graph", SPEC, "--format", "dot")
    assert dot.stdout.startswith('digraph "penguins" {')


def test_graph_of_a_broken_spec_reports_errors(tmp_path):
    bad = tmp_path / "bad.mlops"
    bad.write_text(Path(ROOT / SPEC).read_text().replace("after = release", "after = relase"))
    done = mlopsc("graph", str(bad))
    assert done.returncode == 1 and "did you mean 'release'?" in done.stderr and done.stdout == ""


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_graph_images(tmp_path, fmt, magic):
    out = tmp_path / f"graph.{fmt}"
    done = mlopsc("graph", SPEC, "--format", fmt, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(magic)


def test_graph_image_without_graphviz_says_what_to_install(tmp_path):
    done = mlopsc("graph", SPEC, "--format", "svg", "-o", str(tmp_path / "g.svg"), env={"PATH": str(tmp_path)})
    assert done.returncode == 2
    assert "needs Graphviz's 'dot' program" in done.stderr and "apt-get install graphviz" in done.stderr


def test_fmt_check_reports_and_fmt_rewrites(tmp_path):
    spec = tmp_path / "p.mlops"
    spec.write_text("pipeline p {\n  source s { csv = \"a.csv\"   filter = \"x > 1\" }\n}\n")
    original = spec.read_text()
    done = mlopsc("fmt", "--check", str(spec))
    assert done.returncode == 1 and f"would reformat {spec}" in done.stderr
    assert spec.read_text() == original
    assert mlopsc("fmt", str(spec)).returncode == 0
    formatted = spec.read_text()
    assert formatted != original
    again = mlopsc("fmt", "--check", str(spec))
    assert again.returncode == 0 and spec.read_text() == formatted


def test_fmt_of_a_broken_spec_exits_1(tmp_path):
    spec = tmp_path / "p.mlops"
    spec.write_text("pipeline p {\n  source s { csv = \n}\n")
    done = mlopsc("fmt", str(spec))
    assert done.returncode == 1 and "error[" in done.stderr and "Traceback" not in done.stderr


def test_colour_marks_severity_and_caret():
    from mlopsc.compiler.cli import _styled

    text = _styled("f.mlops:1:2: error[E203]: unknown step 'x'\n   1 | a\n       ^\n  hint: did you mean 'y'?", "error")
    styles = {str(span.style) for span in text.spans}
    assert {"bold red", "red", "cyan"} <= styles
    assert text.plain.startswith("f.mlops:1:2: error[E203]: unknown step 'x'")


def test_fmt_of_an_unreadable_file_exits_1(tmp_path):
    binary = tmp_path / "binary.mlops"
    binary.write_bytes(b"\xff\xfe")
    done = mlopsc("fmt", str(binary))
    assert done.returncode == 1 and "error[E001]: cannot read" in done.stderr


# A spec that checks clean but for one warning, which names the file it was found in.
TINY = 'pipeline p {\n  source s {\n    csv = "a.csv"\n  }\n}\n'


def spec_tree(root: Path) -> list[str]:
    """Specs where a user keeps them, and where `check DIR` must not look; returns the specs to find."""
    found = ["a/c.mlops", "a/deep/er/z.mlops", "b.mlops", "folder.mlops/inner.mlops"]
    skipped = [".mlopsc/runs/x.mlops", ".mlops/y.mlops", ".git/g.mlops", ".venv/lib/v.mlops", "venv/v.mlops",
               "env311/e.mlops", "node_modules/n.mlops", "__pycache__/p.mlops"]
    for rel in found + skipped:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(TINY)
    (root / "env311" / "pyvenv.cfg").write_text("home = /usr/bin\n")     # a virtualenv by another name
    (root / "a" / "notes.txt").write_text("not a spec\n")
    return [str(root / rel) for rel in found]


def checked_files(stderr: str) -> list[str]:
    return [line.split(":")[0] for line in stderr.splitlines() if ": warning[W402]" in line]


def test_check_of_the_examples_folder_checks_the_three_examples():
    done = mlopsc("check", "specs")
    assert (done.returncode, done.stderr) == (0, "0 errors, 0 warnings in 3 files\n")


def test_check_dir_takes_its_specs_recursively_in_order_skipping_state_hidden_and_venv_folders(tmp_path):
    expected = spec_tree(tmp_path)
    done = mlopsc("check", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert checked_files(done.stderr) == expected
    assert done.stderr.endswith(f"0 errors, {len(expected)} warnings in {len(expected)} files\n")


def test_check_takes_files_and_folders_together_each_file_once(tmp_path):
    expected = spec_tree(tmp_path)
    done = mlopsc("check", f"{tmp_path}/b.mlops", f"{tmp_path}/a", f"{tmp_path}/", "specs/penguins.mlops")
    assert done.returncode == 0, done.stderr
    assert checked_files(done.stderr) == [expected[2], expected[0], expected[1], expected[3]]
    assert done.stderr.endswith("0 errors, 4 warnings in 5 files\n")


@pytest.mark.parametrize("command", ["check", "fmt"])
def test_a_folder_without_a_spec_is_a_usage_error(tmp_path, command):
    (tmp_path / ".mlopsc").mkdir()
    (tmp_path / ".mlopsc" / "x.mlops").write_text(TINY)     # only in a state folder: not searched
    (tmp_path / "readme.txt").write_text("")
    done = mlopsc(command, str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert f"no .mlops spec in folder '{tmp_path}'" in done.stderr and "Traceback" not in done.stderr


def test_the_state_folders_are_among_the_skipped_folders():
    """spec_files.py skips them as hidden folders; the compiler does not import the runtime's names."""
    from mlopsc.compiler.spec_files import skipped_folder
    from mlopsc.runtime.state_folder import STATE_FOLDERS

    assert all(skipped_folder(f"specs/{name}") for name in STATE_FOLDERS)
