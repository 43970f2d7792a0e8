"""Helpers for the release-stage tests (gate, deploy, monitor, lineage, rollback): small real
models on the penguins data, metrics documents, unique registry names. The MLflow store and run
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


def fit_model(frame: pd.DataFrame, uri: str, *, max_depth: int = 3, seed: int = 0) -> str:
    """Fit a small tree on raw penguin columns (imputation and one-hot inside the pipeline, as the
    train stage builds it) and save it as an MLflow model folder at `uri`; returns its sha256."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    numeric, categorical = FEATURES[:4], FEATURES[4:]
    prepare = make_column_transformer(
        (SimpleImputer(strategy="median"), numeric),
        (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         categorical))
    model = make_pipeline(prepare, DecisionTreeClassifier(max_depth=max_depth, random_state=seed))
    model.fit(frame[FEATURES], frame["species"])
    return artifacts.save_model(model, uri)


def metrics_doc(uri: str, metrics: dict[str, float], task: str = "classification") -> str:
    artifacts.write_json({"metrics": metrics, "task": task, "rows": 86, "model_sha256": "m" * 64,
                          "data_sha256": "d" * 64}, uri)
    return uri
