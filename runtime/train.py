"""Train stage: fit one scikit-learn Pipeline (preprocessing + estimator) and save it as a Model.

The model takes the raw feature columns: preprocessing is a ColumnTransformer inside the Pipeline
(numerics and booleans: impute + scale; text and categories: impute + encode, in the way that fits
the estimator: see preprocessing.py), so serving, evaluation and batch scoring feed it rows as they
come. Optional grid or random search (cv folds shuffled with the tune seed) picks the estimator's
params. The fitted model is written to `outputs["model"]` (an MLflow model folder) and logged to the step's MLflow run with
its params, CV scores, training data hash, signature and input example.
"""
from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts, preprocessing, tracking
from .core import RunContext, StepError, require_columns, step_error, step_result

if TYPE_CHECKING:
    import pandas as pd

MAX_WARNINGS = 5   # distinct fit warnings kept in the result


# ---------------------------------------------------------------- estimator


def estimator_class(step: ir.Train) -> type:
    """Import the estimator by its dotted name. Names outside `sklearn.` must name a
    BaseEstimator subclass (the compiler already checked they are in `allow estimators`)."""
    from sklearn.base import BaseEstimator

    name, span = step.estimator.name, step.estimator.span
    module_name, _, class_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name, None) if module_name else None
    except ImportError:
        cls = None
    if cls is None:
        import difflib

        from mlopsc.compiler.estimators import sklearn_estimators

        close = difflib.get_close_matches(name, list(sklearn_estimators()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise step_error(step, f"estimator {name} cannot be imported{hint}", span=span,
                         expected="an importable class, e.g. sklearn.ensemble.RandomForestClassifier",
                         found=name)
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        # e.g. `estimator = os.system`: importable, but no estimator
        raise step_error(step, f"{name} is not a scikit-learn estimator", span=span,
                         expected="a subclass of sklearn.base.BaseEstimator", found=repr(cls))
    return cls


def make_estimator(step: ir.Train, cls: type) -> Any:
    params = dict(step.estimator.params)
    try:
        accepted = cls().get_params()
    except TypeError:
        accepted = {}
    unknown = [p for p in params if p not in accepted] if accepted else []
    if unknown:
        raise step_error(step, f"{cls.__name__} has no parameter {unknown[0]!r}", span=step.estimator.span,
                         expected=f"one of: {', '.join(sorted(accepted))}", found=unknown[0])
    # Seeded unless the spec set it: the same spec and data give the same model.
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = int(step.seed)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise step_error(step, f"{cls.__name__} does not accept these params", span=step.estimator.span,
                         expected="the estimator's constructor parameters", found=str(exc)) from None


def infer_task(step: ir.Train, estimator: Any) -> str:
    from sklearn.base import is_classifier, is_regressor

    kind = "classification" if is_classifier(estimator) else None
    kind = kind or ("regression" if is_regressor(estimator) else None)
    if step.task and kind and step.task != kind:
        raise step_error(step, f"{step.estimator.name} is a {kind} estimator but task = {step.task}", "task",
                         expected=f"a {step.task} estimator", found=f"a {kind} estimator")
    if not (step.task or kind):
        raise step_error(step, f"cannot tell whether {step.estimator.name} classifies or regresses", "task",
                         expected="task = classification or task = regression", found="no task")
    return step.task or kind


# ---------------------------------------------------------------- data


def features_and_target(step: ir.Train, df: pd.DataFrame, task: str) -> tuple[pd.DataFrame, pd.Series]:
    from pandas.api import types as t
    from sklearn.utils.multiclass import type_of_target

    require_columns(step, list(df.columns), [step.target], role="target column",
                    span=step.spans.get("target"))
    features = list(step.features) if step.features is not None else [
        c for c in df.columns if c != step.target]
    require_columns(step, list(df.columns), features, role="feature", span=step.spans.get("features"))
    if step.target in features:
        raise step_error(step, f"the target {step.target!r} is also a feature", "features",
                         expected="features without the target", found=", ".join(features))
    if not features:
        raise step_error(step, "no feature columns", "features", expected="at least one feature",
                         found=f"only the target {step.target!r}")
    y = df[step.target]
    missing = int(y.isna().sum())
    if missing:
        raise step_error(step, f"the target {step.target!r} has {missing} missing value(s)", "target",
                         expected="a target value on every row (or `missing_target = drop` in this "
                                  "train step: it drops the rows without one and counts them)",
                         found=f"{missing} of {len(y)} rows without one")
    if task == "classification":
        kind = type_of_target(y)
        if kind == "continuous":
            raise step_error(step, f"the target {step.target!r} holds continuous numbers; a classifier "
                             "needs labels", "target", expected="class labels (text or whole numbers)",
                             found=f"dtype {y.dtype}")
        if y.nunique() < 2:
            raise step_error(step, f"the target {step.target!r} has a single class: {y.iloc[0]!r}", "target",
                             expected="at least two classes", found=f"{y.nunique()} class")
    elif not (t.is_numeric_dtype(y) and not t.is_bool_dtype(y)):
        raise step_error(step, f"the target {step.target!r} is not numeric; a regressor needs numbers", "target",
                         expected="a numeric column", found=f"dtype {y.dtype}, e.g. {y.iloc[0]!r}")
    return df[features], y


def drop_missing_target(step: ir.Train, df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`missing_target = drop`: the rows that have a target, and how many had none. A row without
    a target teaches the model nothing, and imputing one would invent labels."""
    if step.missing_target != "drop" or step.target not in df.columns:
        return df, 0
    has_target = df[step.target].notna()
    if not has_target.any():
        raise step_error(step, f"no row has a value for the target {step.target!r}", "target",
                         expected="some rows with a target", found=f"all {len(df)} rows without one")
    return df[has_target].reset_index(drop=True), int((~has_target).sum())


def dropped_rows(step: ir.Train, count: int) -> dict[str, Any]:
    """The result's count of rows dropped by `missing_target = drop`, and its note when there are any."""
    if step.missing_target != "drop":
        return {}
    note = [f"{count} row(s) without a value for the target {step.target!r} dropped (missing_target = drop)"]
    return {"rows_without_target": count, **({"notes": note} if count else {})}


# ---------------------------------------------------------------- tuning


def scoring(step: ir.Train, task: str, y: pd.Series) -> str | None:
    from mlopsc.compiler.metrics import task_of

    from .metrics import sklearn_scoring

    metric = step.tune.metric if step.tune else None
    if metric is None:
        return None
    if task_of(metric) != task:
        raise step_error(step, f"metric {metric} does not apply to {task}",
                         span=step.tune.spans.get("metric") or step.tune.span, expected=f"a {task} metric",
                         found=f"a {task_of(metric) or 'unknown'} metric")
    try:
        import numpy as np

        return sklearn_scoring(metric, classes=list(np.unique(y)) if task == "classification" else [])
    except ValueError as exc:
        raise step_error(step, str(exc), span=step.tune.spans.get("metric") or step.tune.span,
                         expected="a metric that fits the target", found=metric) from None


def make_search(step: ir.Train, pipeline: Any, task: str, y: pd.Series) -> Any:
    from sklearn.model_selection import (
        GridSearchCV,
        KFold,
        ParameterGrid,
        RandomizedSearchCV,
        StratifiedKFold,
    )

    tune = step.tune
    accepted = pipeline.named_steps["estimator"].get_params()
    for name in tune.space:
        if name not in accepted:
            raise step_error(step, f"tune: {step.estimator.name} has no parameter {name!r}",
                             span=tune.spans.get(f"space.{name}") or tune.span,
                             expected=f"one of: {', '.join(sorted(accepted))}", found=name)
    space = {f"estimator__{k}": list(v) for k, v in tune.space.items()}
    if task == "classification":
        smallest = y.value_counts().min()
        if smallest < tune.cv:
            raise step_error(step, f"cv = {tune.cv} folds but the smallest class has {smallest} row(s)",
                             span=tune.spans.get("cv") or tune.span,
                             expected=f"at least {tune.cv} rows per class",
                             found=f"{y.value_counts().idxmin()!r}: {smallest} rows")
        folds = StratifiedKFold(n_splits=tune.cv, shuffle=True, random_state=tune.seed)
    else:
        folds = KFold(n_splits=tune.cv, shuffle=True, random_state=tune.seed)
    common = {"scoring": scoring(step, task, y), "cv": folds, "refit": True, "error_score": "raise"}
    if tune.method == "grid":
        return GridSearchCV(pipeline, space, **common)
    n_iter = min(tune.n_iter, len(ParameterGrid(space)))   # sklearn warns when asked for more
    return RandomizedSearchCV(pipeline, space, n_iter=n_iter, random_state=tune.seed, **common)


def cv_summary(search: Any, step: ir.Train) -> dict[str, Any]:
    """Best params and the best candidate's fold scores, in the metric's own sign (an rmse is
    positive even though sklearn maximises its negation)."""
    from mlopsc.compiler.metrics import LOWER_IS_BETTER

    sign = -1 if step.tune.metric in LOWER_IS_BETTER else 1
    i = search.best_index_
    folds = [sign * float(search.cv_results_[f"split{k}_test_score"][i]) for k in range(search.n_splits_)]
    best = {k.removeprefix("estimator__"): v for k, v in search.best_params_.items()}
    return {"best_params": best, "cv_metric": step.tune.metric or "default score",
            "cv_score": sign * float(search.best_score_), "cv_scores": folds,
            "candidates": len(search.cv_results_["params"])}


# ---------------------------------------------------------------- run


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def fit(step: ir.Train, model: Any, X: pd.DataFrame, y: pd.Series) -> list[str]:
    """Fit in place; returns the distinct warnings raised while fitting (e.g. convergence)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except StepError:
            raise
        except Exception as exc:  # noqa: BLE001 - any estimator failure is the user's to fix
            raise step_error(step, f"fitting {step.estimator.name} failed", span=step.estimator.span,
                             expected="an estimator and params that fit this data",
                             found=f"{type(exc).__name__}: {_first_line(exc)}") from None
    return list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))[:MAX_WARNINGS]


def run(step: ir.Train, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    df = artifacts.read_parquet(inputs["data"])
    data_sha = artifacts.sha256_of(inputs["data"])
    estimator = make_estimator(step, estimator_class(step))
    task = infer_task(step, estimator)
    df, without_target = drop_missing_target(step, df)
    X, y = features_and_target(step, df, task)
    pipeline, X, numeric, categorical = preprocessing.build_pipeline(step, estimator, X)
    search = make_search(step, pipeline, task, y) if step.tune else None
    fit_warnings = fit(step, search or pipeline, X, y)
    model = search.best_estimator_ if search else pipeline
    summary = cv_summary(search, step) if search else {}

    from mlflow.models import infer_signature

    example = X.dropna().head(5) if len(X.dropna()) else X.head(5)
    with tracking.quiet_warnings():
        signature = infer_signature(example, model.predict(example))
    params = {k: v for k, v in model.named_steps["estimator"].get_params(deep=False).items()
              if k in step.estimator.params or k in summary.get("best_params", {}) or k == "random_state"}
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    trusted = artifacts.skops_trusted_types(model)

    with tracking.step_run(ctx, step) as mlrun:
        import mlflow
        import mlflow.sklearn

        # What consumers of the model (evaluate, score, monitor) need without the train step's config.
        metadata = {"mlopsc": {"step": step.name, "target": step.target, "task": task, "classes": classes,
                               "features": [str(c) for c in X.columns], "data_sha256": data_sha,
                               "missing_target": step.missing_target, "mlflow_run_id": mlrun.info.run_id}}
        model_sha = artifacts.save_model(model, outputs["model"], signature=signature, input_example=example,
                                         trusted_types=trusted, metadata=metadata)
        mlflow.log_params({"estimator": step.estimator.name, "task": task, "target": step.target,
                           "encoding": preprocessing.encoding(step, estimator),
                           # MLflow caps a param at 6000 characters; wide data has long lists.
                           "features": ",".join(map(str, X.columns))[:6000], "rows": len(X),
                           **({"rows_without_target": without_target} if step.missing_target == "drop" else {}),
                           **{f"estimator.{k}": v for k, v in params.items()}})
        if summary:
            mlflow.log_params({"tune.method": step.tune.method, "tune.cv": step.tune.cv,
                               "tune.metric": summary["cv_metric"], "tune.candidates": summary["candidates"],
                               **{f"best.{k}": v for k, v in summary["best_params"].items()}})
            mlflow.log_metric("cv_score", summary["cv_score"])
            for k, score in enumerate(summary["cv_scores"]):
                mlflow.log_metric("cv_fold_score", score, step=k)
        tracking.log_dataset(df[[*X.columns, step.target]], inputs["data"], name=str(step.data),
                             digest=data_sha, context="training", targets=step.target)
        mlflow.set_tags({"mlopsc.data_sha256": data_sha, "mlopsc.model_sha256": model_sha})
        with artifacts.trusted_model_loading():   # MLflow reloads the model to validate the example
            info = mlflow.sklearn.log_model(
                model, name="model", signature=signature, input_example=example, metadata=metadata,
                serialization_format="skops", skops_trusted_types=trusted,
                pip_requirements=artifacts.pip_requirements())
    return step_result(step, {"model": (outputs["model"], model_sha)}, task=task,
                       estimator=step.estimator.name, params=params, target=step.target,
                       features=[str(c) for c in X.columns],
                       numeric=numeric, categorical=categorical, encoding=preprocessing.encoding(step, estimator),
                       classes=classes, rows=len(X),
                       **dropped_rows(step, without_target),
                       data_sha256=data_sha, mlflow_run_id=mlrun.info.run_id, model_uri=info.model_uri,
                       model_id=getattr(info, "model_id", None), warnings=fit_warnings, **summary)
