"""The same runtime error is reported at the same spec position by every backend.

A step reaches the runtime as the config its backend embeds: the IR as JSON for `mlopsc run`, a
dict literal in the generated local module, Prefect flow and Kubeflow pipeline. Each backend then
prints the StepError its own way (the local summary, the Prefect task's failed state, the kfp
component's last line). Here the train step of tests/data/cars.mlops, whose target is missing on
three rows, runs from each of those configs and fails; every message must name the position of
`target = ...`, as precise as the runtime can be, and never fall back to the step's position.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from mlopsc.compiler import ir, load

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tests" / "data" / "cars.mlops"
POSITION = re.compile(r"cars\.mlops:(\d+):(\d+)")


def generated_configs(program, monkeypatch) -> dict[str, dict]:
    """The train step's config as each backend hands it to the runtime."""
    from mlopsc.backends.base import load_generator

    monkeypatch.setattr("mlopsc.backends.kubeflow.generator.compile_module", lambda text: "")
    configs = {"run": next(s for s in program.pipeline.model_dump(mode="json")["steps"]
                           if s["name"] == "mpg_model")}
    for target in ("local", "prefect", "kubeflow"):
        files = load_generator(target)(program).generate()
        found = [ast.literal_eval(node) for name, text in files.items() if name.endswith(".py")
                 for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Dict)
                 and _constant_items(node).get("name") == "mpg_model"
                 and _constant_items(node).get("kind") == "train"]
        assert len(found) == 1, target
        configs[target] = found[0]
    return configs


def _constant_items(node: ast.Dict) -> dict:
    return {k.value: v.value for k, v in zip(node.keys, node.values)
            if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}


def message(backend: str, exc, capsys) -> str:
    """The StepError as the backend shows it to its user."""
    if backend in ("run", "local"):
        from mlopsc.backends.local.progress import format_error
        from mlopsc.backends.local.worker import _error

        return format_error("mpg_model", _error(exc))
    if backend == "kubeflow":
        from mlopsc.backends.kubeflow.task import _fail

        with pytest.raises(SystemExit):
            _fail(exc, 5)
        return capsys.readouterr().err
    return str(exc)   # prefect.runner.run_step: logged, and the Failed state's message


def test_every_backend_reports_a_missing_target_at_the_target_option(tmp_path, monkeypatch, capsys):
    import pandas as pd
    from mlopsc.runtime import RunContext, StepError, artifacts, execute

    monkeypatch.chdir(ROOT)
    program = load(str(SPEC.relative_to(ROOT)))
    target = program.pipeline.step("mpg_model").spans["target"]
    data = str(tmp_path / "train.parquet")
    artifacts.write_parquet(pd.read_csv(SPEC.with_name("cars.csv")), data)
    ctx = RunContext(pipeline="cars", run_id="positions", spec_path=str(SPEC), artifact_root=str(tmp_path))

    positions = {}
    for backend, config in generated_configs(program, monkeypatch).items():
        node = ir.step_from_json(config)
        with pytest.raises(StepError) as failed:
            execute(node, {"data": data}, artifacts.output_uris(str(tmp_path / backend), node), ctx)
        shown = message(backend, failed.value, capsys)
        assert "'Miles_per_Gallon' has 3 missing value(s)" in shown, (backend, shown)
        positions[backend] = tuple(map(int, POSITION.search(shown).groups()))
    assert set(positions.values()) == {(target.line, target.col)}, positions
