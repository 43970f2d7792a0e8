"""`mlopsc diff`: golden outputs on pairs of specs, no difference where only layout changed, and
the command line (spec errors, `--against GIT_REF` in a real repository, usage errors).

Each `tests/diff/CASE/` holds `old.mlops`, `new.mlops` and the expected `expected.txt`,
`expected.md` and `expected.json`; UPDATE_GOLDEN=1 rewrites them (review the diff).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlopsc.compiler import loads
from mlopsc.compiler.cli import diff as diff_command
from mlopsc.compiler.diff import diff_programs
from mlopsc.compiler.fmt import format_spec
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p.parent for p in (ROOT / "tests" / "diff").glob("*/old.mlops"))
FORMATS = {"text": "expected.txt", "markdown": "expected.md", "json": "expected.json"}


def run_diff(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(diff_command, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_outputs(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for fmt, name in FORMATS.items():
        rel = case.relative_to(ROOT).as_posix()
        code, out, err = run_diff(f"{rel}/old.mlops", f"{rel}/new.mlops", "--format", fmt)
        assert code == 0, err
        expected = case / name
        if os.environ.get("UPDATE_GOLDEN"):
            expected.write_text(out, encoding="utf-8")
        assert expected.is_file(), f"{expected} is missing: run with UPDATE_GOLDEN=1 and review it"
        assert out == expected.read_text(encoding="utf-8"), f"{fmt} differs from {expected}"


def test_the_cases_cover_what_the_diff_reports() -> None:
    found = {path.parent.name: json.loads(path.read_text()) for path in (ROOT / "tests" / "diff").glob("*/expected.json")}
    assert found["reformatted"]["identical"]
    changes = {step["change"] for case in found.values() for step in case["steps"]}
    assert changes == {"added", "removed", "renamed", "changed"}
    verdicts = {r["verdict"] for case in found.values() for r in case["reruns"]}
    assert verdicts == {"runs", "may run"}
    meaning = [m["text"] for m in found["gates_and_deploys"]["meaning"]]
    assert "deploy churn_service is no longer guarded by a gate (it was by gate release)" in meaning
    assert any("lowered from 0.9 (params.min_accuracy) to 0.85: easier to pass" in m for m in meaning)
    assert 'deploy churn_shadow now moves alias "shadow" (was "champion")' in meaning


def test_markdown_cells_hold_hostile_values() -> None:
    """A path with `|`, backticks and `*` stays inside its table cell, as code: every row of a
    table has as many cells as its header."""
    markdown = (ROOT / "tests" / "diff" / "fields_and_params" / "expected.md").read_text()
    tables = re.findall(r"(?m)(?:^\|.*\n)+", markdown)
    assert len(tables) == 4
    for table in tables:
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(widths) == 1, table
    assert '``"data/diabetes\\|2024 `v2` *new*.csv"``' in markdown


@pytest.mark.parametrize("spec", specs_in(ROOT / "specs"), ids=lambda p: p.stem)
def test_layout_makes_no_difference(spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    program = loads(text, str(spec))
    assert diff_programs(program, loads(text, str(spec))).identical
    assert diff_programs(program, loads(format_spec(text), str(spec))).identical


def test_a_spec_that_does_not_compile_gives_its_diagnostics_and_exit_1(tmp_path: Path) -> None:
    old = ROOT / "tests" / "diff" / "renames" / "old.mlops"
    broken = tmp_path / "new.mlops"
    broken.write_text(old.read_text().replace("data = penguins_split.test", "data = penguins_splt.test"))
    code, out, err = run_diff(str(old), str(broken))
    assert code == 1 and out == ""
    assert f"{broken}:10:" in err and "error[E2" in err and "did you mean" in err


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                   check=True, capture_output=True, timeout=60)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A git repository with the renames case's old spec and its data file, committed."""
    folder = tmp_path / "repo" / "specs"
    (folder / "data").mkdir(parents=True)
    (folder / "penguins.mlops").write_text((ROOT / "tests" / "diff" / "renames" / "old.mlops").read_text())
    (folder / "data" / "penguins.csv").write_text("species,year\nAdelie,2007\n")
    git(folder.parent, "init", "-q")
    git(folder.parent, "add", ".")
    git(folder.parent, "commit", "-q", "-m", "first")
    return folder


def test_against_a_git_revision_compares_the_spec_and_its_data(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = repo / "penguins.mlops"
    spec.write_text(spec.read_text().replace("n_estimators = 100", "n_estimators = 200"))
    (repo / "data" / "penguins.csv").write_text("species,year\nAdelie,2007\nGentoo,2008\n")
    monkeypatch.chdir(repo.parent)
    code, out, err = run_diff("specs/penguins.mlops", "--against", "HEAD", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["old"] == "HEAD:specs/penguins.mlops" and result["new"] == "specs/penguins.mlops"
    assert [(s["name"], s["fields"]) for s in result["steps"]] == [
        ("species_model", [{"field": "estimator.params.n_estimators", "old": 100, "new": 200}])]
    reruns = {r["step"]: r["reasons"] for r in result["reruns"]}
    assert reruns["penguins"] == ["its file data/penguins.csv changed"]
    assert reruns["species_model"] == ["config changed: estimator.params.n_estimators"]
    assert "penguins_2009" in reruns       # reads the same file


@pytest.mark.parametrize(("args", "message"), [
    (["specs/new.mlops", "--against", "HEAD"], "specs/new.mlops does not exist in HEAD"),
    (["specs/penguins.mlops", "--against", "--output=/tmp/x"], "is not a git revision"),
    (["specs/penguins.mlops", "--against", "no-such-branch"], "--against no-such-branch"),
    (["specs/penguins.mlops"], "give two specs"),
])
def test_usage_errors(repo: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    (repo / "new.mlops").write_text((repo / "penguins.mlops").read_text())
    monkeypatch.chdir(repo.parent)
    code, out, err = run_diff(*args)
    assert code == 2 and message in err and out == ""
