"""The step contract: param binding, env/secret references, step JSON, MLflow run nesting."""
from __future__ import annotations

import os

import pytest
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression
from mlopsc.runtime import RunContext, StepError, artifacts, execute, tracking
from mlopsc.runtime.params import bind, resolve_ref


def test_bind_replaces_params_everywhere():
    step = ir.Train(
        name="t", data=ir.Ref(step="d"), target="y", seed=ir.ParamRef(name="seed"),
        estimator=ir.Estimator(name="sklearn.linear_model.Ridge",
                               params={"alpha": ir.ParamRef(name="alpha"),
                                       "tol": [ir.ParamRef(name="alpha")]}))
    bound = bind(step, {"seed": 5, "alpha": 0.5})
    assert bound.seed == 5 and bound.estimator.params == {"alpha": 0.5, "tol": [0.5]}
    assert step.seed == ir.ParamRef(name="seed")   # the original node is untouched (frozen)
    rule = ir.RowsRule(op=">=", value=ir.ParamRef(name="min_rows"))
    check = ir.Check(name="c", data=ir.Ref(step="d"), rules=(rule,))
    assert bind(check, {"min_rows": 10}).rules[0].value == 10


def test_unknown_param_suggests_the_closest():
    step = ir.Split(name="s", data=ir.Ref(step="d"), test_size=ir.ParamRef(name="test_sise"))
    with pytest.raises(StepError) as info:
        bind(step, {"test_size": 0.2})
    assert "params.test_sise" in str(info.value) and "did you mean params.test_size" in str(info.value)


def test_env_and_secret_references(monkeypatch):
    monkeypatch.setenv("DB_URL", "sqlite://")
    monkeypatch.setenv("WAREHOUSE_PROD_PASSWORD", "s3cret")
    assert resolve_ref(ir.EnvRef(name="DB_URL")) == "sqlite://"
    assert resolve_ref(ir.SecretRef(name="warehouse.prod", key="password")) == "s3cret"
    monkeypatch.delenv("WAREHOUSE_PROD_PASSWORD")
    with pytest.raises(StepError) as info:
        resolve_ref(ir.SecretRef(name="warehouse-prod", key="password"))
    assert "WAREHOUSE_PROD_PASSWORD" in str(info.value) and "s3cret" not in str(info.value)


def test_execute_takes_the_step_as_json_and_the_context_as_a_dict(ctx, tmp_path):
    step = ir.Source(name="penguins", format="csv", path="data/penguins.csv", filter=expression("year == 2007"))
    uri = str(tmp_path / "data.parquet")
    result = execute(step.model_dump_json(), {}, {"data": uri}, ctx.to_dict())
    assert result["rows"] == 110 and result["outputs"]["data"]["sha256"] == artifacts.sha256_of(uri)


def test_invalid_step_config_is_a_step_error(ctx):
    with pytest.raises(StepError, match="not a valid mlopsc step"):
        execute({"kind": "split", "name": "s"}, {}, {}, ctx)


def test_library_errors_become_step_errors_with_the_spec_line(ctx, tmp_path):
    span = ir.Span(file="p.mlops", line=9, col=3, end_line=9, end_col=30)
    step = ir.Split(name="s", data=ir.Ref(step="d"), span=span)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    outputs = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")}
    with pytest.raises(StepError) as info:
        execute(step, {"data": str(tmp_path / "broken.parquet")}, outputs, ctx)
    assert str(info.value).startswith("step s (p.mlops:9:3): ")


def test_step_runs_nest_under_the_pipeline_run(ctx):
    step = ir.Source(name="src", format="csv", path="x.csv")
    with tracking.step_run(ctx, step) as run:
        pass
    got = tracking.client(ctx).get_run(run.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == ctx.parent_run_id
    assert got.info.experiment_id == tracking.configure(ctx) and got.info.status == "FINISHED"


def test_default_tracking_store_beside_the_spec(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = tmp_path / "project" / "p.mlops"
    spec.parent.mkdir()
    context = RunContext(pipeline="p", run_id="r", spec_path=str(spec))
    assert tracking.tracking_uri(context) == f"sqlite:///{spec.parent}/.mlopsc/mlflow.db"
    assert os.path.isdir(spec.parent / ".mlopsc")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert tracking.tracking_uri(context) == "sqlite:///elsewhere.db"


def test_pipeline_run_records_params_and_spec(tmp_path, mlflow_uri):
    context = RunContext(pipeline="params-test", run_id="r1", spec_hash="abc", tracking_uri=mlflow_uri,
                         params={"test_size": 0.25, "name": "x"})
    run_id = tracking.start_pipeline_run(context)
    context.parent_run_id = run_id
    tracking.end_pipeline_run(context, "failed")
    run = tracking.client(context).get_run(run_id)
    assert run.data.params == {"test_size": "0.25", "name": "x"}
    assert run.data.tags["mlopsc.spec_hash"] == "abc" and run.data.tags["mlopsc.run_id"] == "r1"
    assert run.info.status == "FAILED"


def test_missing_input_artifact_names_the_input(ctx, tmp_path):
    step = ir.Split(name="s", data=ir.Ref(step="d"))
    gone = str(tmp_path / "never-written.parquet")
    outputs = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")}
    with pytest.raises(StepError) as info:
        execute(step, {"data": gone}, outputs, ctx)
    assert "input artifact is missing" in str(info.value) and f"data={gone}" in str(info.value)
