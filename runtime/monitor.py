"""Monitor: drift of a current dataset against a reference, per feature and of the predictions.

Inputs: `reference`, `current` (Datasets) and optionally `model` (a model folder). With
`step.registry` set (the monitor's model has a deploy), the model in service,
`models:/registry@alias`, is scored instead, and a monitor run before anything is deployed fails
saying what to run first. Output: `report`,
a Report JSON with every feature's statistics, every rule with its observed value, and the rules
that fired with their actions; the statistics are also logged as MLflow metrics of the step's run.

Statistics (runtime/drift_statistics.py; missing values are left out and reported as null fractions):
- numeric features (and datetimes, as seconds since 1970): PSI over ten bins cut at the
  reference's deciles, and the two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp's
  statistic and p-value);
- categorical features (text, category, bool): PSI over the categories, and the chi-square test of
  the reference-vs-current category counts (scipy.stats.chi2_contingency): statistic and p-value;
- predictions, under the name `prediction`: the model scores both datasets; predicted classes are
  compared as a categorical feature, predicted values (regression) as a numeric one.
PSI = sum over bins of (current share - reference share) * ln(current share / reference share),
with shares floored at 1e-4 so that an empty bin counts as rare rather than infinite.

Rules on a served `current` (a `source ... { served = DEPLOY }`, runtime/served.py):
- `metric NAME OP X -> ACTION`: the metric (runtime/metrics.py) of the logged `prediction` against
  the feedback `label`, on the rows that have one; with fewer than `min_labels` such rows the rule
  is "not evaluated": it does not fire, and its reason says how many rows had labels.
- `latency pNN OP X -> ACTION`: the percentile of `latency_ms` over the requests in `current`
  (a request of several rows counts once).

Actions of fired rules: `alert` logs a warning and, when `step.webhook` is set, POSTs a JSON
summary to that URL; `retrain` makes the result `{"retrain": true, "reasons": [...]}`, which the
backends turn into a new run of the training pipeline. A webhook that cannot be reached does not
fail the monitor (its report is still worth keeping): the result's status becomes "warn".
"""
from __future__ import annotations

import json
import logging
import math
import operator
import re
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts
from .core import RunContext, StepError, require_columns, step_result
from .drift_statistics import drift

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("mlopsc.monitor")
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
PREDICTION = "prediction"


def run(step: ir.Monitor, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    from .deploy import load_scoring_model

    reference = artifacts.read_parquet(inputs["reference"])
    current = artifacts.read_parquet(inputs["current"])
    model, model_source = load_scoring_model(step, inputs, ctx)
    features = _features(step, model, reference, current)
    stats = {name: drift(reference[name], current[name]) for name in features}
    if model is not None:
        stats[PREDICTION] = _prediction_drift(step, model, reference, current, features)
    rules = [_judge(step, rule, stats) for rule in step.drift]
    rules += [_judge_served(step, rule, current) for rule in step.rules]
    fired = [r for r in rules if r["fired"]]
    report: dict[str, Any] = {
        "monitor": step.name, "pipeline": ctx.pipeline,
        "reference": {"uri": inputs["reference"], "rows": len(reference),
                      "sha256": artifacts.sha256_of(inputs["reference"])},
        "current": {"uri": inputs["current"], "rows": len(current), "sha256": artifacts.sha256_of(inputs["current"])},
        "model": model_source,
        "features": stats, "rules": rules, "fired": fired,
        "retrain": any(r["action"] == "retrain" for r in fired),
        "alert": any(r["action"] == "alert" for r in fired),
    }
    status = "ok"
    if report["alert"]:
        report["webhook"] = _alert(step, report)
        status = "warn" if report["webhook"].get("error") else "ok"
    digest = artifacts.write_json(report, outputs["report"])
    _log_metrics(step, ctx, stats, rules)
    reasons = [r["reason"] for r in fired if r["action"] == "retrain"]
    # A rule that could not be judged (too few labels) is no verdict: say so where a run shows notes.
    notes = {"notes": [r["reason"] for r in rules if r.get("evaluated") is False]}
    return step_result(step, {"report": (outputs["report"], digest)}, status, retrain=bool(reasons),
                       reasons=reasons, alerts=[r["reason"] for r in fired if r["action"] == "alert"],
                       webhook=report.get("webhook"), **(notes if notes["notes"] else {}))


def _features(step: ir.Monitor, model: Any, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The model's input columns, else every column both datasets have; rule columns must exist."""
    common = [str(c) for c in reference.columns if c in set(current.columns)]
    names = [str(c) for c in getattr(model, "feature_names_in_", common)]
    for column in (reference, current):
        require_columns(step, [str(c) for c in column.columns], names, role="feature")
    for rule in step.drift:
        if rule.column != PREDICTION:
            require_columns(step, common, [rule.column], role="drift column", span=rule.span)
            if rule.column not in names:
                names.append(rule.column)
        elif model is None:
            raise StepError("a drift rule on the predictions needs a model", span=rule.span,
                            expected="model = <train step> in the monitor block", found="no model")
    return names


def _prediction_drift(step: ir.Monitor, model: Any, reference: pd.DataFrame, current: pd.DataFrame,
                      features: list[str]) -> dict[str, Any]:
    import pandas as pd

    columns = [str(c) for c in getattr(model, "feature_names_in_", features)]
    predicted = [pd.Series(model.predict(frame[columns])) for frame in (reference, current)]
    if hasattr(model, "classes_"):   # a classifier: compare predicted classes as categories
        predicted = [p.astype(str) for p in predicted]
    return drift(*predicted)


def _judge(step: ir.Monitor, rule: ir.DriftRule, stats: dict[str, Any]) -> dict[str, Any]:
    entry = stats[rule.column]
    text = f"{rule.statistic}({rule.column})" + (" pvalue" if rule.measure == "pvalue" else "")
    where = str(rule.span) if rule.span else None
    if rule.statistic == "psi":
        if rule.measure == "pvalue":
            raise StepError("PSI has no p-value", span=rule.span, expected=f"psi({rule.column}) > threshold",
                            found=f"{text} {rule.op} {rule.threshold}")
        observed = entry.get("psi")
    else:
        wanted = "numeric" if rule.statistic == "ks" else "categorical"
        if entry.get("type") not in (wanted, "empty"):
            other = "chi2" if rule.statistic == "ks" else "ks"
            raise StepError(f"{rule.statistic} needs a {wanted} column and '{rule.column}' is "
                            f"{entry.get('type')}", span=rule.span, expected=f"{other}({rule.column}) or "
                            f"psi({rule.column})", found=f"{rule.statistic}({rule.column})")
        test = entry.get(rule.statistic) or {}
        observed = test.get("statistic" if rule.measure == "value" else "pvalue")
    limit = float(rule.threshold)
    fired = observed is not None and OPS[rule.op](observed, limit)
    shown = "no data" if observed is None else f"{observed:.4g}"
    return {"rule": f"{text} {rule.op} {rule.threshold}", "kind": "drift", "column": rule.column, "statistic": rule.statistic,
            "measure": rule.measure, "observed": observed, "op": rule.op, "threshold": limit, "fired": fired,
            "action": rule.action, "where": where,
            "reason": f"{text} is {shown}, {'' if fired else 'not '}{rule.op} {limit:g}"}


def _judge_served(step: ir.Monitor, rule: ir.MetricRule | ir.LatencyRule, current: pd.DataFrame) -> dict[str, Any]:
    if isinstance(rule, ir.MetricRule):
        text = f"metric {rule.metric}"
        observed, rows, note = _served_metric(step, rule, current)
        limit, unit = float(rule.threshold), ""
    else:
        text = f"latency {rule.percentile}"
        observed, rows, note = _latency(step, rule, current)
        limit, unit = float(rule.threshold_ms), "ms"
    fired = observed is not None and OPS[rule.op](observed, limit)
    shown = f"{observed:.4g}{unit}" if observed is not None else None
    reason = (f"{text} is {shown}, {'' if fired else 'not '}{rule.op} {limit:g}{unit} ({note})" if shown
              else f"{text} not evaluated: {note}")
    return {"rule": f"{text} {rule.op} {limit:g}{unit}", "kind": rule.kind, "observed": observed,
            "evaluated": observed is not None, "rows": rows, "op": rule.op, "threshold": limit, "fired": fired,
            "action": rule.action, "where": str(rule.span) if rule.span else None, "reason": reason}


def _served_metric(step: ir.Monitor, rule: ir.MetricRule, current: pd.DataFrame) -> tuple[float | None, int, str]:
    """(value or None, labelled rows, what was measured)."""
    import pandas as pd
    from mlopsc.compiler.metrics import task_of

    from . import metrics

    require_columns(step, [str(c) for c in current.columns], ["prediction", "label"],
                    role="column of a served log", span=rule.span)
    labelled = current[current["label"].notna()]
    if len(labelled) < step.min_labels:
        return None, len(labelled), (f"{len(labelled)} of {len(current)} rows have feedback labels, "
                                     f"fewer than min_labels = {step.min_labels}")
    proba_columns = [str(c) for c in labelled.columns if str(c).startswith("proba_")]
    if task_of(rule.metric) == "classification":
        # Labels come back as text: compare classes as text, in the order of the proba columns.
        y_true, y_pred = labelled["label"].astype(str), labelled["prediction"].astype(str)
        classes = [c.removeprefix("proba_") for c in proba_columns] or sorted(set(y_true) | set(y_pred))
        proba = labelled[proba_columns].to_numpy() if proba_columns else None
    else:
        y_true, y_pred = pd.to_numeric(labelled["label"]), pd.to_numeric(labelled["prediction"])
        classes, proba = [], None
    try:
        value = metrics.compute(rule.metric, y_true, y_pred, proba, classes)
    except ValueError as exc:
        raise StepError(f"metric {rule.metric} cannot be computed on the served rows: {exc}", span=rule.span,
                        expected="labels and predictions the metric fits", found=str(exc)) from None
    return value, len(labelled), f"on {len(labelled)} labelled rows"


def _latency(step: ir.Monitor, rule: ir.LatencyRule, current: pd.DataFrame) -> tuple[float | None, int, str]:
    import numpy as np

    require_columns(step, [str(c) for c in current.columns], ["latency_ms", "request_id"],
                    role="column of a served log", span=rule.span)
    # Rows of one request share its latency (`<id>/<row>`): each request counts once.
    per_request = current.assign(request=current["request_id"].astype(str).str.split("/").str[0]) \
        .drop_duplicates("request")["latency_ms"].dropna()
    if per_request.empty:
        return None, 0, "no request with a latency in current"
    value = float(np.percentile(per_request.to_numpy(dtype=float), int(rule.percentile[1:])))
    return value, len(per_request), f"over {len(per_request)} requests"


def _alert(step: ir.Monitor, report: dict[str, Any]) -> dict[str, Any]:
    """Log every alert; POST a summary to the webhook, if any. Returns what happened to the POST."""
    alerts = [r for r in report["fired"] if r["action"] == "alert"]
    for rule in alerts:
        log.warning("drift alert from monitor %s: %s", step.name, rule["reason"])
    if step.webhook is None:
        return {"posted": False}
    from .params import resolve_ref

    url = resolve_ref(step.webhook, step)
    summary = {"monitor": step.name, "pipeline": report["pipeline"], "retrain": report["retrain"],
               "alerts": [r["reason"] for r in alerts], "fired": [r["rule"] for r in report["fired"]],
               "reference_sha256": report["reference"]["sha256"], "current_sha256": report["current"]["sha256"]}
    return post_json(url, summary)


def post_json(url: str, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """POST `body` as JSON; never raises. The URL may hold a token, so it is never logged."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "mlopsc"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return {"posted": True, "status": response.status}
    except urllib.error.HTTPError as exc:
        error = f"the webhook answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = f"the webhook could not be reached: {getattr(exc, 'reason', exc)}"
    log.warning("monitor alert not delivered: %s", error)
    return {"posted": False, "error": error}


def _metric_name(text: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", text)


def _log_metrics(step: ir.Monitor, ctx: RunContext, stats: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    from . import tracking

    fired = [r for r in rules if r["fired"]]
    metrics: dict[str, float] = {"drift.rules_fired": float(len(fired))}
    for rule in rules:      # `served.metric.accuracy`, `served.latency.p95_ms`
        if rule.get("kind") in ("metric", "latency") and rule["observed"] is not None:
            name = rule["rule"].split(" ")[1] + ("_ms" if rule["kind"] == "latency" else "")
            metrics[f"served.{rule['kind']}.{_metric_name(name)}"] = rule["observed"]
    for name, entry in stats.items():
        key = f"drift.{_metric_name(name)}"
        if entry.get("psi") is not None:
            metrics[f"{key}.psi"] = entry["psi"]
        for test in ("ks", "chi2"):
            if test in entry:
                metrics[f"{key}.{test}_statistic"] = entry[test]["statistic"]
                metrics[f"{key}.{test}_pvalue"] = entry[test]["pvalue"]
    with tracking.step_run(ctx, step):
        import mlflow

        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        mlflow.set_tags({"mlopsc.monitor.fired": "; ".join(r["rule"] for r in fired)[:5000] or "none",
                         "mlopsc.monitor.retrain": str(any(r["action"] == "retrain" for r in fired)).lower()})
