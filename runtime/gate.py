"""Gate: decide whether a trained model may be deployed.

Inputs: `metrics` (the evaluate step's Metrics JSON) and, for fairness rules, `predictions` (the
evaluate step's predictions: the data's columns plus `y_true`, `y_pred`). Output: `decision`, a
Report JSON listing every rule with its observed value, threshold and reason.

A gate reads the registry (the champion's metrics) and never writes it. A failing gate writes its
decision, tags the MLflow run, then raises StepFailed(reason="gate"): the backends skip the deploy
and exit with status 4. `ctx.force_gate` passes a failing gate and records who forced it and when.

Fairness measures (classification only; rows whose sensitive value is missing are left out):
- demographic_parity: for each class c, the largest minus the smallest share of rows predicted c
  across the groups of the column; the measure is the largest such gap over the classes. For a
  binary model this is the usual difference of selection rates.
- equal_opportunity: the same over true-positive rates P(y_pred = c | y_true = c, group); for a
  binary model only the positive class (the greater label, as scikit-learn takes it) counts.
  A group with no row of class c does not take part in that class's gap.
"""
from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts
from .core import RunContext, StepError, StepFailed, os_user, step_result

if TYPE_CHECKING:
    import pandas as pd

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def run(step: ir.Gate, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    document = artifacts.read_json(inputs["metrics"])
    candidate: dict[str, float] = document.get("metrics", {})
    judge = _Judge(step, ctx, candidate, document.get("task"), inputs.get("predictions"))
    rules = [judge.rule(rule) for rule in step.rules]
    rules_passed = all(r["passed"] for r in rules)
    decision: dict[str, Any] = {
        "gate": step.name, "passed": rules_passed, "forced": False, "rules": rules,
        "candidate_metrics": candidate, "champion": judge.champion_info,
        "model_sha256": document.get("model_sha256"), "data_sha256": document.get("data_sha256"),
    }
    if not rules_passed and ctx.force_gate:
        decision.update(passed=True, forced=True, forced_by=ctx.forced_by or os_user(),
                        forced_at=datetime.now(UTC).isoformat(timespec="seconds"))
    digest = artifacts.write_json(decision, outputs["decision"])
    verdict = "forced" if decision["forced"] else "passed" if decision["passed"] else "failed"
    _record(step, ctx, decision, verdict)
    summary = {"passed": decision["passed"], "forced": decision["forced"], "verdict": verdict,
               "failed_rules": [r["reason"] for r in rules if not r["passed"]]}
    result = step_result(step, {"decision": (outputs["decision"], digest)},
                         "warn" if decision["forced"] else "ok", decision=summary, metrics=candidate)
    if decision.get("forced_by"):
        result["decision"].update(forced_by=decision["forced_by"], forced_at=decision["forced_at"])
    if not decision["passed"]:
        reasons = "\n".join(f"  - {r['reason']}" + (f" ({r['where']})" if r.get("where") else "")
                            for r in rules if not r["passed"])
        raise StepFailed(f"the gate did not pass, so nothing is deployed:\n{reasons}\n"
                         "  (rerun with --force-gate to deploy anyway; the override is recorded)",
                         reason="gate", result=result, step=step.name, span=step.span)
    return result


class _Judge:
    """Evaluates rules; looks the champion and the predictions up once, on first need."""

    def __init__(self, step: ir.Gate, ctx: RunContext, candidate: dict[str, float], task: str | None,
                 predictions_uri: str | None) -> None:
        self.step, self.ctx, self.candidate, self.task = step, ctx, candidate, task
        self.predictions_uri = predictions_uri
        self._predictions: pd.DataFrame | None = None
        self._champion: tuple[dict[str, Any] | None, dict[str, float]] | None = None

    @property
    def champion_info(self) -> dict[str, Any] | None:
        return self._champion[0] if self._champion else None

    def rule(self, rule: ir.GateRule) -> dict[str, Any]:
        entry = {"kind": rule.kind, "where": str(rule.span) if rule.span else None}
        if isinstance(rule, ir.ThresholdRule):
            return entry | self.threshold(rule)
        if isinstance(rule, ir.ChampionRule):
            return entry | self.champion(rule)
        return entry | self.fairness(rule)

    def metric(self, name: str, rule: ir.GateRule) -> float:
        if name not in self.candidate:
            raise StepError(f"the gate needs metric '{name}', which the evaluate step did not compute",
                            span=rule.span, expected=f"one of: {', '.join(sorted(self.candidate))}",
                            found=name)
        return float(self.candidate[name])

    def threshold(self, rule: ir.ThresholdRule) -> dict[str, Any]:
        observed, limit = self.metric(rule.metric, rule), float(rule.value)
        passed = OPS[rule.op](observed, limit)
        return {"rule": f"{rule.metric} {rule.op} {rule.value}", "metric": rule.metric, "op": rule.op,
                "observed": observed, "threshold": limit, "passed": passed,
                "reason": f"{rule.metric} is {observed:.4f}, "
                          f"{'meets' if passed else 'does not meet'} {rule.op} {limit:g}"}

    def champion(self, rule: ir.ChampionRule) -> dict[str, Any]:
        observed = self.metric(rule.metric, rule)
        delta = float(rule.delta)
        text = f"{rule.metric} {rule.op} champion.{rule.metric}" + (f" {delta:+g}" if delta else "")
        base = {"rule": text, "metric": rule.metric, "op": rule.op, "observed": observed, "delta": delta}
        info, metrics = self.lookup_champion()
        missing = None
        if info is None:
            missing = (f"no model holds {self.step.registry}@{self.step.alias}" if self.step.registry
                       else "the gate guards no deploy, so there is no champion to compare with")
        elif rule.metric not in metrics:
            missing = (f"the champion ({info['registry']} version {info['version']}) has no recorded "
                       f"{rule.metric}")
        if missing:
            passed = self.step.no_champion == "pass"
            return base | {"threshold": None, "champion": None, "passed": passed,
                           "reason": f"{missing}; no_champion = {self.step.no_champion}"}
        limit = metrics[rule.metric] + delta
        passed = OPS[rule.op](observed, limit)
        return base | {
            "threshold": limit, "champion": {"version": info["version"], "value": metrics[rule.metric]},
            "passed": passed,
            "reason": f"{rule.metric} is {observed:.4f}, {'meets' if passed else 'does not meet'} "
                      f"{rule.op} {limit:.4f} (champion version {info['version']}: "
                      f"{metrics[rule.metric]:.4f}{f' {delta:+g}' if delta else ''})"}

    def lookup_champion(self) -> tuple[dict[str, Any] | None, dict[str, float]]:
        if self._champion is None:
            self._champion = (None, {})
            if self.step.registry:
                from . import registry, tracking

                client = tracking.client(self.ctx)
                version = registry.version_by_alias(client, self.step.registry, self.step.alias)
                if version is not None:
                    metrics = registry.version_metrics(client, version)
                    self._champion = (registry.describe(version) | {"metrics": metrics}, metrics)
        return self._champion

    def fairness(self, rule: ir.FairnessRule) -> dict[str, Any]:
        frame = self.predictions(rule)
        measure = demographic_parity if rule.measure == "demographic_parity" else equal_opportunity
        observed, by_group = measure(frame, rule.column)
        limit = float(rule.value)
        passed = OPS[rule.op](observed, limit)
        return {"rule": f"{rule.measure}({rule.column}) {rule.op} {rule.value}", "measure": rule.measure,
                "column": rule.column, "op": rule.op, "observed": observed, "threshold": limit,
                "passed": passed, "groups": by_group,
                "reason": f"{rule.measure} difference across {rule.column} is {observed:.4f}, "
                          f"{'meets' if passed else 'does not meet'} {rule.op} {limit:g}"}

    def predictions(self, rule: ir.FairnessRule) -> pd.DataFrame:
        if self.task == "regression":
            raise StepError("fairness rules need a classifier's predictions", span=rule.span,
                            expected="a classification model", found="a regression model")
        if not self.predictions_uri:
            raise StepError("a fairness rule needs the evaluate step's predictions, and the gate got "
                            "none", span=rule.span, expected="input 'predictions'", found="no input")
        if self._predictions is None:
            self._predictions = artifacts.read_parquet(self.predictions_uri)
        frame = self._predictions
        if rule.column not in frame.columns:
            columns = [c for c in frame.columns if c not in ("y_true", "y_pred")]
            raise StepError(f"fairness column '{rule.column}' is not in the predictions", span=rule.span,
                            expected=f"one of: {', '.join(map(str, columns))}", found=rule.column)
        return frame


def _groups(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[frame[column].notna()]


def demographic_parity(frame: pd.DataFrame, column: str) -> tuple[float, dict[str, Any]]:
    """Largest gap over classes of the share of rows predicted that class, across groups."""
    import pandas as pd

    data = _groups(frame, column)
    rates = pd.crosstab(data[column], data["y_pred"], normalize="index")   # group x class shares
    gaps = rates.max() - rates.min()
    return _largest(gaps), {str(g): _round(row) for g, row in rates.iterrows()}


def equal_opportunity(frame: pd.DataFrame, column: str) -> tuple[float, dict[str, Any]]:
    """Largest gap over (positive) classes of the true-positive rate, across groups."""
    data = _groups(frame, column)
    classes = sorted(data["y_true"].dropna().unique())
    if len(classes) == 2:
        classes = classes[1:]    # binary: only the positive (greater) label
    gaps: dict[Any, float] = {}
    rates: dict[str, dict[str, float]] = {}
    for cls in classes:
        actual = data[data["y_true"] == cls]
        tpr = (actual["y_pred"] == cls).groupby(actual[column]).mean()
        for group, value in tpr.items():
            rates.setdefault(str(group), {})[str(cls)] = round(float(value), 6)
        gaps[cls] = float(tpr.max() - tpr.min()) if len(tpr) else 0.0
    return max(gaps.values(), default=0.0), rates


def _largest(gaps: pd.Series) -> float:
    return float(gaps.max()) if len(gaps) else 0.0


def _round(row: pd.Series) -> dict[str, float]:
    return {str(k): round(float(v), 6) for k, v in row.items()}


def _record(step: ir.Gate, ctx: RunContext, decision: dict[str, Any], verdict: str) -> None:
    """The decision as tags and an artifact of the gate's MLflow run, and a tag of the pipeline run."""
    from . import tracking

    failed = "; ".join(r["reason"] for r in decision["rules"] if not r["passed"])
    tags = {"mlopsc.gate.decision": verdict, "mlopsc.gate.failed_rules": failed[:5000]}
    if decision["forced"]:
        tags |= {"mlopsc.gate.forced_by": decision["forced_by"], "mlopsc.gate.forced_at": decision["forced_at"]}
    with tracking.step_run(ctx, step):
        import mlflow

        mlflow.set_tags(tags)
        mlflow.log_dict(decision, f"gate/{step.name}.json")
    if ctx.parent_run_id:
        tracking.client(ctx).set_tag(ctx.parent_run_id, f"mlopsc.gate.{step.name}", verdict)
