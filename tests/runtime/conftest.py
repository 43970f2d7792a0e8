"""Shared fixtures: a real MLflow SQLite store in a temp dir, the penguins example, run contexts."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlopsc.runtime import RunContext

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "specs" / "penguins.mlops"
PENGUINS = REPO / "specs" / "data" / "penguins.csv"
# A cars-like table written for the tests: 40 rows, 3 without Miles_per_Gallon, one Horsepower
# that reads "ninety" and one that is missing.
CARS = REPO / "tests" / "data" / "cars.csv"


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """One SQLite store per test session: creating its schema costs seconds, runs are cheap."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def ctx(tmp_path, mlflow_uri) -> RunContext:
    """A pipeline run context with its parent MLflow run open."""
    from mlopsc.runtime import tracking

    context = RunContext(pipeline="penguins", run_id=uuid.uuid4().hex[:12], spec_path=str(SPEC),
                         spec_hash="test", tracking_uri=mlflow_uri, artifact_root=str(tmp_path / "artifacts"))
    context.parent_run_id = tracking.start_pipeline_run(context)
    yield context
    tracking.end_pipeline_run(context, "ok")


@pytest.fixture
def out(ctx):
    """outputs for a step: `out(step)` -> {port: uri} under the run's artifact root."""
    from mlopsc.runtime.artifacts import output_uris

    return lambda step: output_uris(f"{ctx.artifact_root}/{step.name}", step)


@pytest.fixture(scope="session")
def penguins_csv() -> Path:
    return PENGUINS


@pytest.fixture(scope="session")
def cars_csv() -> Path:
    return CARS


@pytest.fixture
def cars_data(cars_csv, ctx) -> str:
    """tests/data/cars.csv as a Dataset artifact of the run (what a source step would write)."""
    import pandas as pd
    from mlopsc.runtime import artifacts

    uri = f"{ctx.artifact_root}/cars/data.parquet"
    artifacts.write_parquet(pd.read_csv(cars_csv), uri)
    return uri


@pytest.fixture
def penguins(penguins_csv):
    import pandas as pd

    return pd.read_csv(penguins_csv)


@pytest.fixture(scope="session")
def session_ctx(tmp_path_factory, mlflow_uri) -> RunContext:
    """A run shared by the tests that reuse one trained model (training is the slow part)."""
    from mlopsc.runtime import tracking

    root = tmp_path_factory.mktemp("session-run")
    context = RunContext(pipeline="penguins", run_id="session", spec_path=str(SPEC), spec_hash="test",
                         tracking_uri=mlflow_uri, artifact_root=str(root))
    context.parent_run_id = tracking.start_pipeline_run(context)
    yield context
    tracking.end_pipeline_run(context, "ok")


FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex")


@pytest.fixture(scope="session")
def penguins_split(session_ctx, penguins_csv) -> dict[str, str]:
    """The example's stratified split, as artifact URIs {"train", "test"}."""
    import pandas as pd
    from mlopsc.compiler import ir
    from mlopsc.runtime import artifacts, execute

    data = f"{session_ctx.artifact_root}/penguins/data.parquet"
    artifacts.write_parquet(pd.read_csv(penguins_csv), data)
    step = ir.Split(name="penguins_split", data=ir.Ref(step="penguins"), stratify="species", seed=7)
    outputs = artifacts.output_uris(f"{session_ctx.artifact_root}/penguins_split", step)
    execute(step, {"data": data}, outputs, session_ctx)
    return outputs


@pytest.fixture(scope="session")
def trained(session_ctx, penguins_split) -> dict:
    """The example's train step with a small forest and a 2-value grid: its StepResult."""
    from mlopsc.compiler import ir
    from mlopsc.runtime import artifacts, execute

    step = ir.Train(
        name="species_model", data=ir.Ref(step="penguins_split", port="train"), target="species",
        features=FEATURES, seed=3,
        estimator=ir.Estimator(name="sklearn.ensemble.RandomForestClassifier", params={"n_estimators": 25}),
        tune=ir.Tune(method="grid", space={"max_depth": (3, 6)}, cv=3, metric="accuracy"))
    outputs = artifacts.output_uris(f"{session_ctx.artifact_root}/species_model", step)
    return execute(step, {"data": penguins_split["train"]}, outputs, session_ctx)
