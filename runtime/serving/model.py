"""The served model: one registered version loaded with what requests are checked against.

`load_version` downloads a version's MLflow model folder once, reads the train step's metadata
(`mlopsc.features`, `task`, `classes`) and the signature's column types from its MLmodel file, and
loads the scikit-learn model (skops; see artifacts.load_model). `ModelHolder` keeps the version in
service; swapping it is one reference assignment, so a request that already took the old version
finishes on it.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# MLflow signature column types -> the kinds of JSON value a request may give for them.
SIGNATURE_KINDS = {"double": "number", "float": "number", "long": "number", "integer": "number",
                   "string": "text", "boolean": "boolean"}


class ModelLoadError(Exception):
    """A registered version that cannot be served; the message says why."""


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str          # "number" | "text" | "boolean" | "any" (no signature to say)


@dataclass(frozen=True, eq=False)   # identity equality: batches group requests by the model object
class LoadedModel:
    name: str
    version: str
    model: Any
    features: tuple[Feature, ...]
    task: str                      # "classification" | "regression"
    classes: tuple[Any, ...] = ()
    has_proba: bool = False
    source: str = ""
    loaded_at: float = field(default_factory=time.time)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def predict(self, X: Any) -> tuple[Any, Any]:
        """(predictions, probabilities or None) of the rows of X, transformed once for both: a
        Pipeline's preprocessing costs more than a small forest's prediction, and `predict` then
        `predict_proba` on the Pipeline would run it twice. The classes are the estimator's own
        (runtime/scoring.py), so a served answer is the batch score's."""
        from mlopsc.runtime.scoring import classes_of, transformed

        Xt, final = transformed(self.model, X)
        forest = _forest_kind(final)
        if self.has_proba:
            proba = _tree_mean(final, Xt, "predict_proba") if forest == "classifier" else final.predict_proba(Xt)
            return classes_of(final, Xt, proba), proba
        if forest == "regressor":
            return _tree_mean(final, Xt, "predict"), None
        return final.predict(Xt), None


def _forest_kind(estimator: Any) -> str | None:
    """"classifier" or "regressor" for a fitted single-output random or extra-trees forest, else None."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    if getattr(estimator, "n_outputs_", 0) != 1 or not hasattr(estimator, "_validate_X_predict"):
        return None
    if type(estimator) in (RandomForestClassifier, ExtraTreesClassifier):
        return "classifier"
    return "regressor" if type(estimator) in (RandomForestRegressor, ExtraTreesRegressor) else None


def _tree_mean(forest: Any, X: Any, method: str) -> Any:
    """What a single-output forest's `predict_proba` (classifier) or `predict` (regressor) computes,
    the same sums in the same order, so the same numbers: the mean of its trees' answers. The
    forest itself hands each tree to joblib, which, even on one thread, installs the scikit-learn
    config and every warnings filter of the process again for each tree; and each tree's own
    `predict_proba` checks again that it is fitted. For the 300 trees of specs/penguins.mlops that
    was 50 of the call's 60 ms, whatever the number of rows. The trees' answers are their
    `tree_.predict`, sliced as `DecisionTreeClassifier.predict_proba` and
    `DecisionTreeRegressor.predict` slice it (tests/serving/test_model_predict.py holds the equality)."""
    X = forest._validate_X_predict(X)        # the forest's own checks and float32 conversion
    total = 0.0
    for tree in forest.estimators_:
        values = tree.tree_.predict(X)
        total = total + (values[:, :tree.n_classes_] if method == "predict_proba" else values[:, 0])
    return total / len(forest.estimators_)


def read_mlmodel(folder: str) -> dict[str, Any]:
    import yaml

    path = os.path.join(folder, "MLmodel")
    if not os.path.exists(path):
        raise ModelLoadError(f"{folder} is not an MLflow model folder (no MLmodel file)")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def features_of(mlmodel: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """(feature names in the order the model takes them, kind by name). The names come from the train
    step's metadata, else from the signature; the kinds from the signature."""
    signature = (mlmodel.get("signature") or {}).get("inputs")
    columns = json.loads(signature) if isinstance(signature, str) else (signature or [])
    kinds = {c["name"]: SIGNATURE_KINDS.get(c.get("type"), "any") for c in columns if c.get("name")}
    names = ((mlmodel.get("metadata") or {}).get("mlopsc") or {}).get("features") or list(kinds)
    if not names:
        raise ModelLoadError("the model names no input columns (no mlopsc metadata and no signature)")
    return [str(n) for n in names], kinds


def from_folder(folder: str, name: str, version: str, source: str = "") -> LoadedModel:
    """Load a local MLflow sklearn model folder as version `version` of `name`."""
    from mlopsc.runtime import artifacts
    from sklearn.base import is_classifier

    mlmodel = read_mlmodel(folder)
    names, kinds = features_of(mlmodel)
    meta = (mlmodel.get("metadata") or {}).get("mlopsc") or {}
    try:
        model = _load_skops(folder, mlmodel)
        if model is None:
            model = artifacts.load_model(folder)
    except Exception as exc:  # noqa: BLE001 - any load failure keeps the old version serving
        raise ModelLoadError(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    task = meta.get("task") or ("classification" if is_classifier(model) else "regression")
    classes = tuple(c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", ()))
    has_proba = task == "classification" and hasattr(model, "predict_proba") and bool(classes)
    return LoadedModel(name=name, version=str(version), model=model,
                       features=tuple(Feature(n, kinds.get(n, "any")) for n in names), task=task,
                       classes=classes if task == "classification" else (), has_proba=has_proba,
                       source=source)


def _load_skops(folder: str, mlmodel: dict[str, Any]) -> Any:
    """A model saved in the skops format (every one a train step saves) loaded with skops itself
    and the allow-list its MLmodel file holds, exactly as `mlflow.sklearn.load_model` does, minus
    MLflow's import (seconds of a server's start). None for any other format: MLflow loads it."""
    flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    name = flavor.get("pickled_model")
    if flavor.get("serialization_format") != "skops" or not isinstance(name, str):
        return None
    path = os.path.join(folder, name)
    if os.path.dirname(os.path.normpath(path)) != os.path.normpath(folder):
        raise ModelLoadError(f"the MLmodel file names a model file outside its folder: {name!r}")
    import skops.io

    return skops.io.load(path, trusted=flavor.get("skops_trusted_types") or [])


def load_version(tracking_uri: str, name: str, version: str) -> LoadedModel:
    """Load version `version` of registered model `name`: in place when its files are a local
    folder of a SQLite store (no MLflow import, no copy), else downloaded by MLflow."""
    from mlopsc.runtime import registry_lookup

    folder = registry_lookup.local_folder(tracking_uri, name, version)
    if folder is not None:
        return from_folder(folder, name, str(version), f"file://{folder}")
    import mlflow.artifacts
    from mlopsc.runtime import registry

    try:
        client = registry.client(tracking_uri)
        source = client.get_model_version_download_uri(name, str(version))
        with tempfile.TemporaryDirectory(prefix="mlopsc-serve-") as tmp:
            folder = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp,
                                                         tracking_uri=tracking_uri)
            return from_folder(folder, name, str(version), source)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a store error or a missing artifact: not servable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(f"{type(exc).__name__}: {first}") from None


class ModelHolder:
    """The version in service. Readers take `current` once per request; `swap` replaces it whole."""

    def __init__(self) -> None:
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def swap(self, model: LoadedModel) -> LoadedModel | None:
        with self._lock:
            old, self._current = self._current, model
        return old
