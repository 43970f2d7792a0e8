"""`mlopsc build --target github-actions`: golden workflows for every example (and with each deploy
target), every workflow valid for actionlint (with shellcheck), secrets as references only,
schedules and triggers as the spec says, and a hostile spec path run through the review job's
own scripts with bash, git and mlopsc. UPDATE_GOLDEN=1 rewrites the golden files."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from mlopsc.backends.cli import cli
from mlopsc.backends.github_actions.cron import github_cron, too_frequent
from mlopsc.backends.github_actions.generator import GitHubActionsGenerator
from mlopsc.compiler import load
from mlopsc.compiler.fmt import format_spec
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "github_actions"
BIN = Path(sys.executable).parent
VARIANTS = [(spec, {}) for spec in specs_in(ROOT / "specs")] + [
    (ROOT / "specs" / "penguins.mlops", {"deploy_target": "prefect", "work_pool": "ml pool", "runs_on": "self-hosted"}),
    (ROOT / "specs" / "diabetes.mlops", {"deploy_target": "kubeflow", "image": "ghcr.io/acme/diabetes:1",
                                         "branch": "trunk"}),
]
IDS = [spec.stem + "".join(f"-{v}" for v in options.get("deploy_target", "").split()) for spec, options in VARIANTS]


def build(spec: Path, root: Path = ROOT, **options) -> tuple[str, GitHubActionsGenerator]:
    generator = GitHubActionsGenerator(load(str(spec)), {"output": str(root), **options})
    (text,) = generator.generate().values()
    return text, generator


def normalise(text: str) -> str:
    return re.sub(r"==\d+[.\d]*'", "==<VERSION>'", text)


def actionlint(folder: Path) -> subprocess.CompletedProcess:
    """actionlint over every workflow in folder/.github/workflows, scripts checked by shellcheck."""
    if not (BIN / "actionlint").exists() or not (BIN / "shellcheck").exists():
        pytest.skip("actionlint or shellcheck is not installed (pip install -e '.[dev]' installs both)")
    files = sorted(str(p) for p in (folder / ".github" / "workflows").glob("*.yml"))
    return subprocess.run([str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), *files],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("spec", "options"), VARIANTS, ids=IDS)
def test_golden_workflows(spec: Path, options: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    text, _ = build(spec.relative_to(ROOT), **options)
    golden = GOLDEN / f"{IDS[VARIANTS.index((spec, options))]}.yml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(normalise(text))
    assert golden.is_file(), f"no golden file {golden}; run with UPDATE_GOLDEN=1"
    assert normalise(text) == golden.read_text(), f"differs from {golden} (UPDATE_GOLDEN=1 rewrites)"


def test_every_workflow_passes_actionlint(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for name in IDS:
        shutil.copy(GOLDEN / f"{name}.yml", workflows / f"{name}.yml")
    done = actionlint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_follows_the_spec() -> None:
    workflow = yaml.safe_load((GOLDEN / "wine_sql.yml").read_text())
    triggers = workflow[True]          # PyYAML reads the key `on` as a boolean
    assert triggers["pull_request"]["paths"] == ["specs/wine_sql.mlops", ".github/workflows/wine_sql.yml"]
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"] == [{"cron": "0 */6 * * *"}]       # the monitor's; the pipeline has none
    assert triggers["workflow_dispatch"]["inputs"]["task"]["options"] == ["run", "monitor wine_drift"]
    jobs = workflow["jobs"]
    assert set(jobs) == {"review", "run", "monitor_wine_drift"}
    # The SQL source's URL: a secret reference in the jobs that read it, nowhere else.
    for job in ("run", "monitor_wine_drift"):
        assert jobs[job]["env"]["WINE_DB_URL"] == "${{ secrets.WINE_DB_URL }}"
    assert "env" not in jobs["review"]
    assert "0 */6 * * *" in jobs["monitor_wine_drift"]["if"] and "schedule" not in jobs["run"]["if"]
    assert jobs["monitor_wine_drift"]["steps"][-1]["run"] == "mlopsc monitor \"$MLOPSC_SPEC\" --only wine_drift"
    assert workflow["env"] == {"MLOPSC_SPEC": "specs/wine_sql.mlops"}
    review = [step.get("run", "") for step in jobs["review"]["steps"]]
    assert "mlopsc fmt --check \"$MLOPSC_SPEC\"" in review
    assert any("--format markdown >> \"$GITHUB_STEP_SUMMARY\"" in run for run in review)


def test_a_deploy_target_submits_and_leaves_the_schedules_to_it() -> None:
    workflow = yaml.safe_load((GOLDEN / "diabetes-kubeflow.yml").read_text())
    assert "schedule" not in workflow[True] and workflow[True]["push"]["branches"] == ["trunk"]
    deploy = workflow["jobs"]["deploy"]
    assert [s["run"] for s in deploy["steps"] if "run" in s][-2:] == [
        "mlopsc build \"$MLOPSC_SPEC\" --target kubeflow -o build/kubeflow --image ghcr.io/acme/diabetes:1",
        "mlopsc submit build/kubeflow --target kubeflow"]
    assert deploy["env"] == {"MLOPSC_KFP_HOST": "${{ secrets.MLOPSC_KFP_HOST }}"}


def test_what_actions_cannot_express_is_reported(tmp_path: Path) -> None:
    spec = tmp_path / "specs" / "s.mlops"
    spec.parent.mkdir()
    spec.write_text('''pipeline s {
  schedule = "*/2 * * * *"
  params { n: int }
  source raw { csv = "../../outside.csv" }
  check ok on raw { rows >= params.n  timeout = "7h"  resources { cpu = 2 } }
  monitor m { reference = raw  current = raw  drift psi(x) > 0.2 -> alert  schedule = "@daily"
              webhook = secret("hooks.slack") }
}
''')
    text, generator = build(spec, tmp_path)
    found = sorted((d.code, d.span.line, d.message) for d in generator.diagnostics)
    expected = [("W900", 2, "GitHub runs a workflow at most every 5 minutes"),
                ("W900", 3, "param 'n' without a default"),
                ("W900", 4, "a file outside the repository (../../outside.csv)"),
                ("W900", 5, "a timeout over 6 hours"),
                ("W900", 5, "per-step resources")]
    assert [(code, line) for code, line, _ in found] == [(code, line) for code, line, _ in expected]
    assert all(part in message for (_, _, message), (_, _, part) in zip(found, expected)), found
    workflow = yaml.safe_load(text)
    assert workflow[True]["schedule"] == [{"cron": "*/2 * * * *"}, {"cron": "0 0 * * *"}]
    assert workflow["jobs"]["monitor_m"]["env"]["HOOKS_SLACK"] == "${{ secrets.HOOKS_SLACK }}"


def test_cron_in_githubs_dialect() -> None:
    assert github_cron("@hourly") == "0 * * * *"
    assert github_cron("0 6 * * 7") == "0 6 * * 0"
    assert github_cron("0 6 * * 5-7,mon") == "0 6 * * 5-6,0,mon"
    assert github_cron("0 6 * * 1-7/2") is None
    assert too_frequent("* * * * *") and too_frequent("*/4 * * * *") and not too_frequent("*/5 * * * *")


@pytest.mark.parametrize(("path", "option", "message"), [
    ("data/${{ github.token }}.csv", {}, 'the path "data/${{ github.token }}.csv"'),
    ("data/x.csv", {"image": "img:${{ secrets.X }}"}, "--image"),
])
def test_text_github_would_evaluate_is_refused(tmp_path: Path, path: str, option: dict, message: str) -> None:
    spec = tmp_path / "s.mlops"
    spec.write_text(f'pipeline s {{ source raw {{ csv = "{path}" }} check ok on raw {{ rows >= 1 }} }}\n')
    _, generator = build(spec, tmp_path, deploy_target="kubeflow" if option else None, **option)
    errors = [d for d in generator.diagnostics if d.is_error]
    assert len(errors) == 1 and errors[0].code == "E900" and message in errors[0].message


def test_an_invalid_secret_name_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "s.mlops"
    spec.write_text('pipeline s { source raw { sql = env("db-url")  query = "SELECT 1" } check ok on raw { rows >= 1 } }\n')
    _, generator = build(spec, tmp_path)
    assert [d.code for d in generator.diagnostics if d.is_error] == ["E900"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main",
                    *args], cwd=repo, check=True, capture_output=True, timeout=60)


HOSTILE_NAME = """it's [a] "$(touch pwned)" `touch pwned` spec.mlops"""
HOSTILE_DATA = """data/it's "$(touch pwned)".csv"""


def test_a_hostile_spec_path_goes_through_the_review_job_as_data(tmp_path: Path) -> None:
    """The review job's scripts, run by bash with git and the real mlopsc on a spec whose name and
    data path hold quotes, `$( )`, backticks and glob characters: they check, fmt-check and diff
    that file, and nothing in its name is executed."""
    origin, repo = tmp_path / "origin.git", tmp_path / "repo"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(repo))
    spec = repo / "specs" / HOSTILE_NAME
    (repo / "specs" / "data").mkdir(parents=True)
    (repo / "specs" / HOSTILE_DATA).write_text("year,species,bill_length_mm\n2008,Adelie,40\n")
    text = (ROOT / "tests" / "diff" / "renames" / "old.mlops").read_text()
    text = text.replace('"data/penguins.csv"', '"data/it\'s \\"$(touch pwned)\\".csv"')
    spec.write_text(format_spec(text))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "spec")
    git(repo, "push", "-q", "origin", "main")
    spec.write_text(spec.read_text().replace("n_estimators = 100", "n_estimators = 200"))

    workflow_text, generator = build(spec, repo)
    assert not generator.diagnostics
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "penguins.yml").write_text(workflow_text)
    done = actionlint(repo)
    assert done.returncode == 0, done.stdout + done.stderr

    workflow = yaml.safe_load(workflow_text)
    assert workflow[True]["pull_request"]["paths"][:2] == [
        "specs/it's \\[a\\] \"$(touch pwned)\" `touch pwned` spec.mlops", 'specs/data/it\'s "$(touch pwned)".csv']
    summary = tmp_path / "summary.md"
    assert workflow["env"]["MLOPSC_SPEC"] == f"specs/{HOSTILE_NAME}"
    env = {**os.environ, **workflow["env"], "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(summary), "NO_COLOR": "1"}
    for step in workflow["jobs"]["review"]["steps"]:
        if "run" in step and not step["run"].startswith("pip install"):
            ran = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True,
                                 text=True, timeout=120, check=False)
            assert ran.returncode == 0, f"{step['name']}: {ran.stderr}"
    assert "`estimator.params.n_estimators`: `100` → `200`" in summary.read_text()
    assert not list(tmp_path.rglob("pwned"))


def test_build_writes_the_workflow_under_the_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs", ignore=shutil.ignore_patterns(".mlopsc"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "specs/wine_sql.mlops", "--target", "github-actions", "-o", "."])
    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote .github/workflows/wine_sql.yml\n"
    assert "specs/wine_sql.mlops:38:5: warning[W900]: github-actions cannot express cultivar_model" in result.stderr
    assert (tmp_path / ".github" / "workflows" / "wine_sql.yml").read_text() == build(
        tmp_path / "specs" / "wine_sql.mlops", tmp_path)[0]
