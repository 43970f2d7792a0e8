"""Helpers for the release-stage tests (gate, deploy, monitor, lineage, rollback): small models
trained by the real train stage on the penguins data, metrics documents, unique registry names. The MLflow store and run
contexts come from conftest.py."""
from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
from mlopsc.runtime import artifacts

PENGUINS = Path(__file__).resolve().parents[2] / "specs" / "data" / "penguins.csv"
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex"]


def registry_name() -> str:
    """A registry name no other test uses: the MLflow store is shared by the whole session."""
    return f"penguins-{uuid.uuid4().hex[:8]}"


def penguins() -> pd.DataFrame:
    return pd.read_csv(PENGUINS)


def fit_model(ctx, frame: pd.DataFrame, folder: str, *, max_depth: int = 3) -> dict:
    """Train a small tree on the raw penguin columns with the real train stage, its model folder
    at `{folder}/model`; returns the train step's result (`outputs.model.uri`, `mlflow_run_id`...)."""
    from mlopsc.compiler import ir
    from mlopsc.runtime import execute

    data = f"{folder}/train_data.parquet"
    artifacts.write_parquet(frame.reset_index(drop=True), data)
    step = ir.Train(name="species_model", data=ir.Ref(step="penguins_split", port="train"), target="species",
                    features=tuple(FEATURES),
                    estimator=ir.Estimator(name="sklearn.tree.DecisionTreeClassifier",
                                           params={"max_depth": max_depth, "random_state": 0}))
    return execute(step, {"data": data}, {"model": f"{folder}/model"}, ctx)


def metrics_doc(uri: str, metrics: dict[str, float], task: str = "classification") -> str:
    artifacts.write_json({"metrics": metrics, "task": task, "rows": 86, "model_sha256": "m" * 64,
                          "data_sha256": "d" * 64}, uri)
    return uri
