"""`mlopsc build --target kubeflow`: every example compiles with kfp's own compiler, the YAML loads with
kfp, the generated files match their goldens, and the spec's run policy and secrets reach the YAML."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml
from kfp_harness import GOLDEN, REPO, SPECS, build, build_text

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def normalise(name: str, text: str) -> str:
    """Blank what changes with the installed kfp, not with the spec (as kfp's own test utils do)."""
    text = re.sub(r"sdkVersion: kfp-[^\s]+", "sdkVersion: kfp-VERSION", text)
    return re.sub(r'"kfp==[^"]+"', '"kfp==VERSION"', text)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_example_compiles_and_its_yaml_loads_with_kfp(spec, built):
    from kfp import components

    folder, files, diagnostics = built[spec.stem]
    assert not [d for d in diagnostics if d.is_error]
    for name in files:
        if name.endswith(".yaml") and (name == "pipeline.yaml" or name.startswith("monitor_")):
            pipeline = components.load_component_from_file(str(folder / name))
            assert pipeline.pipeline_spec.root.dag.tasks, name
        if name.endswith(".py"):
            ast.parse(files[name])


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_generated_files_match_goldens(spec, built):
    _, files, _ = built[spec.stem]
    folder = GOLDEN / spec.stem
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(normalise(name, text), encoding="utf-8")
    assert folder.is_dir(), f"no goldens for {spec.name}: run with UPDATE_GOLDEN=1"
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, text in files.items():
        assert normalise(name, text) == (folder / name).read_text(encoding="utf-8"), \
            f"{spec.stem}/{name} differs from its golden (UPDATE_GOLDEN=1 rewrites)"


def test_build_is_deterministic():
    first, _ = build(SPECS[0])
    second, _ = build(SPECS[0])
    assert first == second


def penguins_tasks(files):
    spec = yaml.safe_load_all(files["pipeline.yaml"])
    pipeline, platform = next(spec), next(spec, None)
    return pipeline, platform


def test_run_policy_reaches_the_yaml(tmp_path):
    """Resources, retries, caching and a timeout from the spec, as kfp compiled them."""
    text = (REPO / "specs" / "penguins.mlops").read_text().replace(
        "retries = 2", 'retries = 2  retry_delay = 30  timeout = 600  cache = off\n'
        '    resources { cpu = 0.5  memory = "4Gi"  gpu = 1  gpu_type = "nvidia-tesla-t4" }').replace(
        'resources { cpu = 2  memory = "4Gi" }', "")
    (tmp_path / "data").symlink_to(REPO / "specs" / "data")
    files, diagnostics = build_text(text, tmp_path, "penguins.mlops")
    pipeline, platform = penguins_tasks(files)
    train = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]["train-species-model"]
    assert train["retryPolicy"]["maxRetryCount"] == 2
    assert train["retryPolicy"]["backoffDuration"] == "30s"
    assert train["cachingOptions"] == {}      # kfp writes enableCache only when true
    container = pipeline["deploymentSpec"]["executors"]["exec-train-species-model"]["container"]
    assert container["resources"]["cpuRequest"] == 0.5 and container["resources"]["cpuLimit"] == 0.5
    assert container["resources"]["memoryLimit"] == 4.294967296   # 4Gi, in GB as kfp writes it
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia-tesla-t4"
    kubernetes = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-species-model"]
    assert kubernetes["activeDeadlineSeconds"] == "600"
    assert not [d for d in diagnostics if d.is_error]


def test_sources_are_never_cached_and_evaluations_are(built):
    pipeline, _ = penguins_tasks(built["penguins"][1])
    dag = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert dag["source-penguins"]["cachingOptions"] == {}          # kfp#4857: never a stale dataset
    assert dag["evaluate-species-eval"]["cachingOptions"] == {"enableCache": True}
    assert dag["gate-release"]["cachingOptions"] == {}             # the champion changes between runs


SECRET_SPEC = """
pipeline wine {
  source wines { sql = secret("wine-db", "url")  table = "wines" }
  split wine_split from wines { test_size = 0.3  stratify = cultivar  seed = 1 }
  train cultivar_model on wine_split.train {
    target = cultivar
    estimator = sklearn.linear_model.LogisticRegression { max_iter = 500 }
  }
  evaluate cultivar_eval { model = cultivar_model  data = wine_split.test  metrics = [accuracy] }
  monitor wine_drift {
    reference = wine_split.train  current = wines
    drift psi(alcohol) > 0.2 -> alert
    webhook = env("ALERT_HOOK")
  }
}
"""


def test_secrets_appear_in_the_yaml_only_as_secret_references(tmp_path, monkeypatch):
    # A value in this process's environment must not leak into anything generated.
    monkeypatch.setenv("WINE_DB_URL", "sqlite:////very/secret/wine.db")
    monkeypatch.setenv("WINE_DB_URL_", "s3cr3t-value")
    files, diagnostics = build_text(SECRET_SPEC, tmp_path)
    assert not [d for d in diagnostics if d.is_error]
    for name, text in files.items():
        assert "very/secret" not in text and "s3cr3t" not in text, name
    _, platform = penguins_tasks(files)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-source-wines"]["secretAsEnv"] == [{
        "secretName": "wine-db", "keyToEnv": [{"secretKey": "url", "envVar": "WINE_DB_URL"}],
        "optional": False, "secretNameParameter": {"runtimeValue": {"constant": "wine-db"}}}]
    monitor = list(yaml.safe_load_all(files["monitor_wine_drift.yaml"]))[1]
    hook = monitor["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-monitor-wine-drift"]
    assert hook["secretAsEnv"][0]["secretName"] == "wine-env"
    assert hook["secretAsEnv"][0]["keyToEnv"] == [{"secretKey": "ALERT_HOOK", "envVar": "ALERT_HOOK"}]


def without_positions(value):
    if isinstance(value, dict):
        return {k: without_positions(v) for k, v in value.items() if k not in ("span", "spans")}
    if isinstance(value, list):
        return [without_positions(v) for v in value]
    return value


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_step_config_round_trips_through_the_runtime_loader(spec):
    """What a component hands to the runtime loads back as the same step, positions included
    (in the spec file's name alone)."""
    from mlopsc.backends.base import node_config
    from mlopsc.compiler import ir, load

    for step in load(str(spec)).pipeline.steps:
        loaded = ir.step_from_json(node_config(step, spec.name))
        assert without_positions(loaded.model_dump(mode="json")) == without_positions(step.model_dump(mode="json"))
        assert loaded.span.line == step.span.line and loaded.span.file == spec.name
        assert loaded.spans == {k: v.model_copy(update={"file": spec.name}) for k, v in step.spans.items()}


def test_spec_strings_are_escaped_in_the_generated_module(tmp_path):
    """A filter holding quotes and a would-be code injection stays a string literal."""
    evil = "year < 2009 and island != \\\"x'); import os; os.system('rm -rf /'); ('\\\""
    text = f'pipeline p {{ source s {{ csv = "data/penguins.csv"  filter = "{evil}" }} }}'
    (tmp_path / "data").symlink_to(REPO / "specs" / "data")
    files, _ = build_text(text, tmp_path)
    from mlopsc.compiler import load

    module = ast.parse(files["pipeline.py"])
    calls = [n for n in ast.walk(module) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "system"]
    assert not calls
    component = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "source_s")
    config = next(n.value for n in component.body if isinstance(n, ast.Assign) and n.targets[0].id == "step")
    expected = load(str(tmp_path / "spec.mlops")).pipeline.step("s").filter
    assert "os.system('rm -rf /')" in expected.text and expected.tree.right.right.kind == "constant"
    assert ast.literal_eval(config)["filter"]["text"] == expected.text   # the spec's text, as a string literal


def test_a_spec_file_name_with_quotes_stays_inside_the_docstrings(tmp_path):
    text = 'pipeline p { source s { csv = "data/penguins.csv" } check c on s { rows >= 1 } }'
    (tmp_path / "data").symlink_to(REPO / "specs" / "data")
    files, _ = build_text(text, tmp_path, name='odd"""name.mlops')
    module = ast.parse(files["pipeline.py"])
    component = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "source_s")
    assert 'odd"""name.mlops' in ast.get_docstring(module)
    assert ast.get_docstring(component).startswith('source s (odd"""name.mlops:')


def test_unexpressible_options_are_reported_with_their_spec_line(tmp_path):
    text = textwrap.dedent("""\
        pipeline p {
          source s { csv = "/abs/elsewhere.csv" }
          split sp from s { test_size = 0.3 }
        }
        """)
    _, diagnostics = build_text(text, tmp_path)
    found = [d for d in diagnostics if "outside the spec's folder" in d.message]
    assert found and found[0].span.line == 2 and found[0].code == "W900"


def test_reserved_param_names_are_an_error(tmp_path):
    text = 'pipeline p {\n  params { start: int = 1 }\n  source s { csv = "d.csv" }\n}\n'
    _, diagnostics = build_text(text, tmp_path)
    errors = [d for d in diagnostics if d.is_error]
    assert errors and "start" in errors[0].message and errors[0].span.line == 2


def test_cli_build_writes_the_folder_and_choosing_the_image(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", "from mlopsc.backends.cli import main; main()", "build",
                           str(SPECS[0]), "--target", "kubeflow", "-o", str(out), "--image", "reg.io/team/ml:1"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "IMAGE = 'reg.io/team/ml:1'" in (out / "pipeline.py").read_text()
    assert "image: reg.io/team/ml:1" in (out / "pipeline.yaml").read_text()
    assert "docker build -t reg.io/team/ml:1" in (out / "Dockerfile").read_text()


def test_the_component_side_imports_no_kfp_and_the_generator_imports_it_lazily():
    code = ("import sys; import mlopsc.backends.kubeflow.task, mlopsc.backends.kubeflow.generator, "
            "mlopsc.backends.kubeflow.submit; print('kfp' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_written_module_compiles_to_the_written_yaml_with_kfps_own_cli(built):
    """`pipeline.yaml` is what `kfp dsl compile` makes of `pipeline.py`: a user may edit and recompile."""
    folder, files, _ = built["penguins"]
    out = folder / "recompiled.yaml"
    kfp_cli = [sys.executable, "-c", "from kfp.cli.__main__ import main; main()"]
    done = subprocess.run([*kfp_cli, "dsl", "compile", "--py", str(folder / "pipeline.py"), "--output", str(out),
                           "--function", "pipeline"], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == files["pipeline.yaml"]
    out.unlink()
