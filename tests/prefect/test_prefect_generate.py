"""What `mlopsc build --target prefect` writes: golden files for every example spec, code that
compiles and passes ruff, spec values escaped, secrets as references only, and everything Prefect
cannot express reported with its spec line. No server needed."""
from __future__ import annotations

import ast
import os
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlopsc.backends.prefect.generator import PrefectGenerator
from mlopsc.compiler import load
from mlopsc.compiler.errors import render
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "prefect"
SPECS = specs_in(ROOT / "specs")


def build(spec: str | Path, **options) -> tuple[dict[str, str], PrefectGenerator]:
    program = load(str(spec))
    generator = PrefectGenerator(program, options)
    return generator.generate(), generator


def build_text(text: str, tmp_path: Path, **options) -> tuple[dict[str, str], PrefectGenerator]:
    spec = tmp_path / "spec.mlops"
    spec.write_text(text)
    return build(spec, **options)


def normalise(text: str) -> str:
    """The machine-dependent parts of the output: the spec's absolute path, Prefect's version."""
    text = re.sub(r'(?m)^prefect-version: ".*"$', 'prefect-version: "<VERSION>"', text)
    return text.replace(str(ROOT), "<ROOT>")


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_golden_files(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)   # spans name the spec as the command line did: specs/NAME.mlops
    files, _ = build(spec.relative_to(ROOT))
    assert set(files) == {"flows.py", "prefect.yaml"}
    folder = GOLDEN / spec.stem
    for name, text in files.items():
        golden = folder / name
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(normalise(text))
        assert golden.is_file(), f"no golden file {golden}; run with UPDATE_GOLDEN=1"
        assert normalise(text) == golden.read_text(), f"{name} differs from {golden} (UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_generated_code_compiles_and_passes_ruff(spec: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "mlopsc"), "build", str(spec), "--target",
                             "prefect", "-o", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    py_compile.compile(str(tmp_path / "flows.py"), doraise=True)
    ruff = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "--isolated", "--no-cache",
                           str(tmp_path / "flows.py")], capture_output=True, text=True, timeout=120, check=False)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    config = yaml.safe_load((tmp_path / "prefect.yaml").read_text())
    assert [d["entrypoint"].split(":")[0] for d in config["deployments"]] == ["flows.py"] * len(config["deployments"])


def test_flows_match_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """Penguins: one task per step with its retries, params as typed flow parameters, the
    monitor as its own flow and deployment, both schedules, the graph as wait_for."""
    monkeypatch.chdir(ROOT)
    files, _ = build("specs/penguins.mlops")
    tree = ast.parse(files["flows.py"])
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    program = load("specs/penguins.mlops")
    for step in program.pipeline.steps:
        assert f"{step.kind}_{step.name}" in functions
    train = ast.unparse(functions["train_species_model"].decorator_list[0])
    assert "retries=2" in train and "retry_condition_fn=retry_unless_verdict" in train
    pipeline = functions["penguins_pipeline"]
    assert [(a.arg, ast.unparse(a.annotation)) for a in pipeline.args.args] == [
        ("test_size", "float"), ("min_accuracy", "float"), ("storage", "str"), ("force_gate", "bool")]
    assert [ast.literal_eval(d) for d in pipeline.args.defaults] == [0.25, 0.9, "", False]
    body = ast.unparse(pipeline)
    assert "steps['species_eval'] = evaluate_species_eval.submit(" in body
    assert "wait_for=[steps['species_model'], steps['penguins_split']]" in body
    assert "monitor_species_drift" not in body            # the monitor runs on its own schedule
    monitor = ast.unparse(functions["species_drift_monitor"])
    assert "retrain_deployment='penguins/penguins'" in monitor
    assert "train_species_model" not in monitor            # it scores the deployed model
    config = yaml.safe_load(files["prefect.yaml"])
    deployments = {d["entrypoint"]: d for d in config["deployments"]}
    assert deployments["flows.py:penguins_pipeline"]["schedules"] == [{"cron": "0 6 * * 1", "timezone": "UTC"}]
    assert deployments["flows.py:species_drift_monitor"]["schedules"] == [{"cron": "0 * * * *", "timezone": "UTC"}]


def test_step_config_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlopsc.compiler import ir

    monkeypatch.chdir(ROOT)
    files, _ = build("specs/penguins.mlops")
    configs = step_configs(files["flows.py"])
    program = load("specs/penguins.mlops")
    for step in program.pipeline.steps:
        assert ir.step_from_json(configs[step.name]) == step   # positions included


HOSTILE = '''
pipeline hostile {
  description = "ends with a quote \\" and triple \\"\\"\\" quotes, a backslash \\\\ and {braces}"
  source raw { csv = "data/it's \\"here\\".csv" filter = "name == 'x\\"\\"\\"'" }
  check raw_ok on raw { rows >= 1 }
}
'''


def test_spec_values_are_escaped(tmp_path: Path) -> None:
    files, _ = build_text(HOSTILE, tmp_path)
    py_compile.compile(_write(tmp_path / "flows.py", files["flows.py"]), doraise=True)
    program = load(str(tmp_path / "spec.mlops"))
    assert step_configs(files["flows.py"])["raw"]["path"] == program.pipeline.step("raw").path
    tree = ast.parse(files["flows.py"])
    flow = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "hostile_pipeline")
    description = next(k.value for k in flow.decorator_list[0].keywords if k.arg == "description")
    assert ast.literal_eval(description) == program.pipeline.description
    assert yaml.safe_load(files["prefect.yaml"])["deployments"][0]["description"] == program.pipeline.description


def test_secret_names_are_escaped_in_the_docstring(tmp_path: Path) -> None:
    spec = 'pipeline p {\n  source s { sql = secret("a\\"\\"\\"b\\\\N") query = "select 1" }\n}\n'
    files, _ = build_text(spec, tmp_path)
    py_compile.compile(_write(tmp_path / "flows.py", files["flows.py"]), doraise=True)


SECRETS = '''
pipeline wine_sql {
  source wine { sql = secret("wine-db", "url") table = "wine" }
  source extra { sql = env("EXTRA_DB_URL") query = "select 1 as one" }
  check wine_ok on wine { rows >= 1 }
  check extra_ok on extra { rows >= 1 }
}
'''


def test_secrets_appear_only_as_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = "sqlite:////very/secret/value.db"
    monkeypatch.setenv("WINE_DB_URL", value)
    monkeypatch.setenv("EXTRA_DB_URL", value)
    files, _ = build_text(SECRETS, tmp_path)
    for name, text in files.items():
        assert value not in text, name
        assert "secret/value" not in text, name
    assert 'secret("wine-db", "url") -> $WINE_DB_URL' in files["flows.py"]
    assert 'env("EXTRA_DB_URL") -> $EXTRA_DB_URL' in files["flows.py"]
    wine = step_configs(files["flows.py"])["wine"]
    assert wine["connection"] == {"key": "url", "kind": "secret", "name": "wine-db",
                                  "span": wine["connection"]["span"]}


def test_what_prefect_cannot_express_is_reported_with_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, generator = build("specs/penguins.mlops")
    text = "\n".join(render(d) for d in generator.diagnostics)
    assert [d.severity for d in generator.diagnostics] == ["warning"]
    lines = (ROOT / "specs" / "penguins.mlops").read_text().splitlines()
    line = next(n for n, source in enumerate(lines, 1) if "resources {" in source)
    col = lines[line - 1].index("resources") + 1
    assert f"specs/penguins.mlops:{line}:{col}: warning[W900]: prefect cannot express species_model: resources" in text
    assert 'resources { cpu = 2  memory = "4Gi" }' in text


def test_kubernetes_pools_carry_the_largest_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    files, generator = build("specs/penguins.mlops", work_pool_type="kubernetes")
    config = yaml.safe_load(files["prefect.yaml"])
    assert config["deployments"][0]["work_pool"]["job_variables"] == {"cpu": "2", "memory": "4Gi"}
    assert config["definitions"]["mlopsc"]["work_pool_type"] == "kubernetes"   # what submit creates
    assert all("shares its pod" in d.message for d in generator.diagnostics)


def test_a_param_named_like_a_flow_parameter_is_an_error(tmp_path: Path) -> None:
    _, generator = build_text('pipeline p {\n  params { storage: str = "x" }\n  source s { csv = "a.csv" }\n}\n',
                              tmp_path)
    errors = [d for d in generator.diagnostics if d.is_error]
    assert errors and errors[0].span.line == 2 and "storage" in errors[0].message


def step_configs(flows: str) -> dict[str, dict]:
    """STEP_CONFIGS of a generated module, evaluated alone (no import of prefect or mlopsc)."""
    tree = ast.parse(flows)
    node = next(n for n in tree.body if isinstance(n, ast.AnnAssign) and n.target.id == "STEP_CONFIGS")
    return ast.literal_eval(node.value)


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_param_without_default_is_a_required_flow_parameter_and_reported(tmp_path: Path) -> None:
    files, generator = build_text('pipeline p {\n  params { x: float }\n  source s { csv = "a.csv" }\n}\n', tmp_path)
    flow = next(n for n in ast.parse(files["flows.py"]).body if isinstance(n, ast.FunctionDef) and n.name == "p_pipeline")
    assert [a.arg for a in flow.args.args] == ["x", "storage", "force_gate"] and len(flow.args.defaults) == 2
    [warning] = [d for d in generator.diagnostics if "without a default" in d.message]
    assert warning.severity == "warning" and warning.span.line == 2


def test_clashing_function_names_are_an_error(tmp_path: Path) -> None:
    _, generator = build_text('pipeline source_x {\n  source x_pipeline { csv = "a.csv" }\n}\n', tmp_path)
    [error] = [d for d in generator.diagnostics if d.is_error]
    assert "source_x_pipeline" in error.message
