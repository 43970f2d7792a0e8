"""Metric and latency rules of a monitor read what only a served log holds: feedback labels and
predictions, request latencies. So `current` must be a served source; a metric must be in the
vocabulary and fit the model's task (that of the monitor's model, else the served one's).

    monitor m { current = penguins_2009  latency p95 > 50ms -> alert }
    # E310: monitor m: a latency rule reads a served prediction log; 'current' is a csv source
    monitor m { current = live  metric acuracy < 0.85 -> retrain }
    # E208: monitor m: unknown metric 'acuracy' ... did you mean 'accuracy'?
"""
from __future__ import annotations

from .. import ir, metrics
from ..errors import Diagnostic
from .common import index, source_of, span_of, train_task, unknown, where
from .metric_names import EXAMPLES
from .served_sources import served_train


def check_monitor_rules(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics: list[Diagnostic] = []
    for step in pipeline.steps:
        if not isinstance(step, ir.Monitor) or not step.rules:
            continue
        source = source_of(idx, step.current)
        served = source if source is not None and source.format == "served" else None
        model = idx.steps.get(step.model.step) if step.model is not None else None
        if not isinstance(model, ir.Train) and served is not None:
            model = served_train(idx, served)
        task = train_task(model, pipeline) if isinstance(model, ir.Train) else None
        for rule in step.rules:
            what = f"{rule.kind} rule"
            if source is not None and served is None:
                diagnostics.append(Diagnostic(
                    "E310", f"{where(step)}a {what} reads a served prediction log; 'current' is a "
                    f"{source.format} source ('{source.name}')", rule.span,
                    "read the deploy's log: source live { served = <deploy step>  window = \"7d\" }, "
                    "then current = live"))
            if isinstance(rule, ir.MetricRule):
                span = span_of(rule, "metric")
                if rule.metric not in metrics.METRICS:
                    diagnostics.append(unknown("E208", "metric", rule.metric, metrics.METRICS, span,
                                               context=where(step)))
                elif task is not None and metrics.task_of(rule.metric) != task:
                    diagnostics.append(Diagnostic(
                        "E306", f"{where(step)}'{rule.metric}' is a {metrics.task_of(rule.metric)} metric, "
                        f"but the model does {task}", span, f"{task} metrics: " + EXAMPLES[task]))
            elif isinstance(rule.threshold_ms, (int, float)) and rule.threshold_ms <= 0:
                diagnostics.append(Diagnostic(
                    "E303", f"{where(step)}a latency threshold must be more than 0 ms, got {rule.threshold_ms:g}",
                    span_of(rule, "threshold_ms")))
    return diagnostics
