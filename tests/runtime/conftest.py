"""Shared fixtures: a real MLflow SQLite store in a temp dir, the penguins example, run contexts."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mlopsc.runtime import RunContext

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "specs" / "penguins.mlops"
PENGUINS = REPO / "specs" / "data" / "penguins.csv"


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


@pytest.fixture
def penguins(penguins_csv):
    import pandas as pd

    return pd.read_csv(penguins_csv)
