"""Metric names come from one vocabulary (`compiler/metrics.py`), fit the model's task, and a gate
may only require metrics its evaluate step computes.

    evaluate e { ... metrics = [accuracy, f1_macor] }   # E208: unknown metric 'f1_macor'
    gate g on e { require rmse <= 3 }                   # E211: gate g: 'rmse' is not computed by e
    evaluate r { model = a_regressor ... metrics = [accuracy] }   # E306: a classification metric
"""
from __future__ import annotations

from .. import ir, metrics
from ..errors import Diagnostic
from .common import index, span_of, train_task, unknown, where

EXAMPLES = {"classification": "accuracy, f1_macro, precision_weighted, roc_auc_ovr, log_loss, ...",
            "regression": ", ".join(sorted(metrics.REGRESSION))}


def check_metric_names(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics: list[Diagnostic] = []

    def check(step: ir.Step, name: str, span: ir.Span | None, task: str | None) -> bool:
        if name not in metrics.METRICS:
            diagnostics.append(unknown("E208", "metric", name, metrics.METRICS, span, context=where(step)))
            return False
        if task is not None and metrics.task_of(name) != task:
            diagnostics.append(Diagnostic(
                "E306", f"{where(step)}'{name}' is a {metrics.task_of(name)} metric, but the model does {task}",
                span, f"{task} metrics: " + EXAMPLES[task]))
        return True

    for step in pipeline.steps:
        if isinstance(step, ir.Evaluate):
            train = idx.steps.get(step.model.step)
            task = train_task(train, pipeline) if isinstance(train, ir.Train) else None
            for i, name in enumerate(step.metrics):
                check(step, name, span_of(step, f"metrics.{i}"), task)
        elif isinstance(step, ir.Train) and step.tune is not None and step.tune.metric is not None:
            check(step, step.tune.metric, span_of(step.tune, "metric"), train_task(step, pipeline))
        elif isinstance(step, ir.Gate):
            evaluate = idx.steps.get(step.metrics.step)
            for rule in step.rules:
                if isinstance(rule, ir.FairnessRule):
                    continue
                # The task was checked where the evaluate step names the metric. An evaluate with a
                # misspelt metric already has its error; "not computed" would only repeat it.
                if check(step, rule.metric, rule.span, None) and isinstance(evaluate, ir.Evaluate) \
                        and rule.metric not in evaluate.metrics and metrics.METRICS.issuperset(evaluate.metrics):
                    diagnostics.append(Diagnostic(
                        "E211", f"{where(step)}'{rule.metric}' is not computed by evaluate {evaluate.name}",
                        rule.span, f"add it to {evaluate.name}'s metrics = [{', '.join(evaluate.metrics)}]"))
    return diagnostics
