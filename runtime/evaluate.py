"""Evaluate stage: score a Model on a Dataset; write Metrics and a predictions Dataset.

The target, task, features and classes come from the model's own metadata (written by the train
step into its MLmodel file), so an evaluate step needs only the model and the data. Metrics are
logged to the step's MLflow run and, under the same names, to the training run and its logged
model: a registered model version then carries the metrics the gate compares with.

With `importance { repeats  seed }`, the step also computes permutation importance
(`sklearn.inspection.permutation_importance`) of every feature on the same data, scored with the
step's first metric: how much that metric drops when one feature's values are shuffled, as mean
and standard deviation over the repeats. It goes into the Metrics document (`importance`) and,
as metrics `importance.<feature>`, into both MLflow runs, so that a registered version carries
it too and a report can set a candidate's importance beside its champion's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts, tracking
from .core import RunContext, StepError, require_columns, step_error, step_result
from .metrics import compute

if TYPE_CHECKING:
    import pandas as pd

IMPORTANCE_PREFIX = "importance."


def model_info(step: ir.Evaluate, uri: str) -> dict[str, Any]:
    info = artifacts.model_metadata(uri).get("mlopsc")
    if not info:
        raise step_error(step, f"the model at {uri} was not written by an mlopsc train step", "model",
                         expected="a model folder with mlopsc metadata (target, task, features)",
                         found="an MLflow model without it")
    return info


def drop_missing_target(step: ir.Evaluate, info: dict[str, Any], df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows that have a target, and how many had none, when the model was trained with
    `missing_target = drop`: a metric over rows without a truth would be no metric at all."""
    target = info["target"]
    if info.get("missing_target") != "drop" or target not in df.columns:
        return df, 0
    has_target = df[target].notna()
    if not has_target.any():
        raise step_error(step, f"no row has a value for the target {target!r}", "data",
                         expected="some rows with a target to evaluate on", found=f"all {len(df)} rows without one")
    return df[has_target].reset_index(drop=True), int((~has_target).sum())


def predict(step: ir.Evaluate, model: Any, info: dict[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """The data plus `y_true`, `y_pred` and, for classifiers with probabilities, `proba_<class>`."""
    target, features = info["target"], info["features"]
    require_columns(step, list(df.columns), [target], role="target column", span=step.spans.get("data"))
    require_columns(step, list(df.columns), features, role="feature", span=step.spans.get("data"))
    missing = int(df[target].isna().sum())
    if missing:
        raise step_error(step, f"the target {target!r} has {missing} missing value(s)", "data",
                         expected="a target value on every evaluated row (or `missing_target = drop` in the "
                                  f"train step {info.get('step') or 'of the model'}: it drops them there and here)",
                         found=f"{missing} of {len(df)} rows")
    from .scoring import predict_with_proba

    try:
        # One pass of the preprocessing and the estimator for both (runtime/scoring.py).
        y_pred, proba = predict_with_proba(model, df[features], with_proba=info["task"] == "classification")
    except Exception as exc:  # noqa: BLE001 - the data does not fit the model: the user's to fix
        raise step_error(step, "the model cannot predict on this data", "data",
                         expected=f"the columns the model was trained on: {', '.join(features)}",
                         found=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    columns = {"y_true": df[target].to_numpy(), "y_pred": y_pred}
    if proba is not None:
        columns |= {f"proba_{label}": proba[:, i] for i, label in enumerate(model.classes_)}
    out = df.assign(**columns)   # the data's columns are shared, not copied
    return out


def score(step: ir.Evaluate, info: dict[str, Any], preds: pd.DataFrame) -> dict[str, float]:
    from mlopsc.compiler.metrics import task_of

    classes = list(info.get("classes") or [])
    proba_cols = [f"proba_{c}" for c in classes]
    proba = preds[proba_cols].to_numpy() if proba_cols and all(c in preds for c in proba_cols) else None
    metrics = {}
    for i, name in enumerate(step.metrics):
        span = step.spans.get(f"metrics.{i}") or step.spans.get("metrics")
        if task_of(name) != info["task"]:
            raise StepError(f"metric {name} does not apply to a {info['task']} model", step=step.name,
                            span=span or step.span, expected=f"a {info['task']} metric",
                            found=f"a {task_of(name) or 'unknown'} metric")
        try:
            metrics[name] = compute(name, preds["y_true"], preds["y_pred"], proba, classes)
        except ValueError as exc:
            raise StepError(f"metric {name} cannot be computed: {exc}", step=step.name,
                            span=span or step.span, expected="a metric that fits the model and data",
                            found=str(exc)) from None
    return metrics


def permutation_importance(step: ir.Evaluate, model: Any, info: dict[str, Any], df: pd.DataFrame) -> dict[str, Any]:
    """Each feature's drop in the step's first metric when its values are shuffled (seeded)."""
    from sklearn import inspection

    from .metrics import sklearn_scoring

    metric, features = step.metrics[0], info["features"]
    try:
        found = inspection.permutation_importance(
            model, df[features], df[info["target"]], scoring=sklearn_scoring(metric, info.get("classes") or []),
            n_repeats=step.importance.repeats, random_state=step.importance.seed)
    except (ValueError, AttributeError) as exc:   # e.g. a metric that needs probabilities the model lacks
        raise step_error(step, f"permutation importance cannot be computed with {metric}", "importance",
                         expected=f"a metric the model can be scored with (the first of metrics: {metric})",
                         found=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return {"metric": metric, "repeats": step.importance.repeats, "seed": step.importance.seed,
            "features": {name: {"mean": float(found.importances_mean[i]), "std": float(found.importances_std[i])}
                         for i, name in enumerate(features)}}


def importance_metric(feature: str) -> str:
    """The MLflow metric that holds a feature's permutation importance."""
    return IMPORTANCE_PREFIX + tracking.metric_name(feature)


def importance_metrics(importance: dict[str, Any]) -> dict[str, float]:
    return {importance_metric(name): value["mean"] for name, value in importance["features"].items()}


def figure(info: dict[str, Any], preds: pd.DataFrame) -> tuple[str, Any]:
    """A confusion matrix (classification) or residuals against predictions (regression), drawn
    on a bare matplotlib Figure: no pyplot state, no display backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    if info["task"] == "classification":
        from sklearn.metrics import ConfusionMatrixDisplay

        ConfusionMatrixDisplay.from_predictions(preds["y_true"], preds["y_pred"],
                                                labels=info.get("classes") or None, ax=ax, colorbar=False)
        ax.set_title("Confusion matrix")
        return "confusion_matrix.png", fig
    residuals = preds["y_true"] - preds["y_pred"]
    ax.scatter(preds["y_pred"], residuals, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")
    ax.set_title("Residuals")
    return "residuals.png", fig


def run(step: ir.Evaluate, inputs: dict[str, str], outputs: dict[str, str],
        ctx: RunContext) -> dict[str, Any]:
    info = model_info(step, inputs["model"])
    model = artifacts.load_model(inputs["model"])
    df, without_target = drop_missing_target(step, info, artifacts.read_parquet(inputs["data"]))
    dropped = {"rows_without_target": without_target} if info.get("missing_target") == "drop" else {}
    notes = [(f"{without_target} row(s) without a value for the target {info['target']!r} left out "
             f"(missing_target = drop in train {info.get('step')})")] if without_target else []
    preds = predict(step, model, info, df)
    metrics = score(step, info, preds)
    importance = permutation_importance(step, model, info, df) if step.importance else None
    logged = metrics | (importance_metrics(importance) if importance else {})
    plot_name, fig = figure(info, preds)
    document = {"metrics": metrics, "task": info["task"], "rows": len(df), "target": info["target"],
                "classes": info.get("classes") or [], "model_sha256": artifacts.sha256_of(inputs["model"]),
                "data_sha256": artifacts.sha256_of(inputs["data"]),
                "train_mlflow_run_id": info.get("mlflow_run_id"), **dropped,
                **({"importance": importance} if importance else {})}
    # Both outputs are computed before either is written.
    hashes = {"predictions": artifacts.write_parquet(preds, outputs["predictions"]),
              "metrics": artifacts.write_json(document, outputs["metrics"])}
    with tracking.step_run(ctx, step) as mlrun:
        import mlflow

        mlflow.log_metrics(logged)
        mlflow.log_figure(fig, plot_name)
        mlflow.log_dict(document, "metrics.json")
        tracking.log_dataset(df, inputs["data"], name=str(step.data), digest=document["data_sha256"],
                             context="evaluation", targets=info["target"])
        mlflow.set_tags({"mlopsc.model_sha256": document["model_sha256"],
                         "mlopsc.data_sha256": document["data_sha256"]})
        if info.get("mlflow_run_id"):
            train_run = info["mlflow_run_id"]
            client = tracking.client(ctx)
            for name, value in logged.items():
                client.log_metric(train_run, name, value)
    return step_result(step, {port: (outputs[port], hashes[port]) for port in ("metrics", "predictions")},
                       metrics=metrics, task=info["task"], rows=len(df), **dropped,
                       **({"notes": notes} if notes else {}),
                       model_sha256=document["model_sha256"], data_sha256=document["data_sha256"],
                       mlflow_run_id=mlrun.info.run_id,
                       train_mlflow_run_id=info.get("mlflow_run_id"))
