"""Option values must be in range and well formed. Types were checked when the IR was built; these
are the limits a type cannot say.

    split s from d { test_size = 1.5 }        # E303: 'test_size' must be between 0 and 1 (exclusive)
    resources { memory = "4GB" }              # E305: memory '4GB' is not a Kubernetes quantity
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .. import ir
from ..errors import Diagnostic
from .common import NODE_CLASSES, Index, index, name_span, option_nodes, span_of, where

# Permutation importance predicts (repeats x features) times on the evaluated data: bounded.
MAX_REPEATS = 50
# Kubernetes resource quantities: "512Mi", "4Gi", "1.5G", "1000".
QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")

# (node type, field, test, what the test demands)
RANGES: list[tuple[type, str, Callable[[Any], bool], str]] = [
    (ir.Step, "retries", lambda v: v >= 0, "must be 0 or more"),
    (ir.Step, "retry_delay", lambda v: v >= 0, "must be 0 or more seconds"),
    (ir.Step, "timeout", lambda v: v > 0, "must be more than 0 seconds"),
    (ir.Split, "test_size", lambda v: 0 < v < 1, "must be between 0 and 1 (exclusive)"),
    (ir.Split, "seed", lambda v: v >= 0, "must be 0 or more"),
    (ir.Train, "seed", lambda v: v >= 0, "must be 0 or more"),
    (ir.Preprocessing, "max_categories", lambda v: v >= 2, "must be 2 or more levels"),
    (ir.Tune, "cv", lambda v: v >= 2, "must be 2 or more folds"),
    (ir.Tune, "n_iter", lambda v: v >= 1, "must be 1 or more"),
    (ir.Resources, "cpu", lambda v: v > 0, "must be more than 0 cores"),
    (ir.Resources, "gpu", lambda v: v >= 0, "must be 0 or more"),
    (ir.Serving, "replicas", lambda v: v >= 1, "must be 1 or more"),
    (ir.Serving, "port", lambda v: 1 <= v <= 65535, "must be a port number (1-65535)"),
    (ir.Serving, "cpu", lambda v: v > 0, "must be more than 0 cores"),
    (ir.Serving, "max_batch_size", lambda v: 1 <= v <= 10_000, "must be between 1 and 10000 rows"),
    (ir.Serving, "max_batch_wait_ms", lambda v: 0 <= v <= 1_000, "must be between 0 and 1000 ms"),
    (ir.Importance, "repeats", lambda v: 1 <= v <= MAX_REPEATS, f"must be between 1 and {MAX_REPEATS}"),
    (ir.Importance, "seed", lambda v: v >= 0, "must be 0 or more"),
    (ir.Source, "window", lambda v: v > 0, "must be more than 0 seconds"),
    (ir.Monitor, "min_labels", lambda v: v >= 1, "must be 1 or more rows"),
    (ir.ColumnRule, "max_null_fraction", lambda v: 0 <= v <= 1, "must be a fraction between 0 and 1"),
    (ir.RowsRule, "value", lambda v: v >= 0, "must be 0 or more"),
    (ir.FairnessRule, "value", lambda v: 0 <= v <= 1, "must be a difference between 0 and 1"),
]
# The same, per node class (a Split gets the Step rows too), so each node looks up only its own.
RANGES_FOR: dict[type, list[tuple[str, Callable[[Any], bool], str]]] = {
    cls: [(key, test, demand) for kind, key, test, demand in RANGES if issubclass(cls, kind)]
    for cls in NODE_CLASSES}


def check_values(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics: list[Diagnostic] = []
    for step in pipeline.steps:
        for node in option_nodes(step):
            for key, test, demand in RANGES_FOR[type(node)]:
                value = _resolved(idx, node.__dict__[key])
                if isinstance(value, (int, float)) and not isinstance(value, bool) and not test(value):
                    label = "rows" if isinstance(node, ir.RowsRule) else f"'{key}'"
                    diagnostics.append(Diagnostic(
                        "E303", f"{where(step)}{label} {demand}, got {value:g}", span_of(node, key)))
            memory = getattr(node, "memory", None) if isinstance(node, (ir.Resources, ir.Serving)) else None
            if memory is not None and not QUANTITY.match(memory):
                diagnostics.append(Diagnostic(
                    "E305", f"{where(step)}memory {memory!r} is not a Kubernetes quantity",
                    span_of(node, "memory"), 'write e.g. "512Mi" or "4Gi" (Mi, Gi are powers of 1024)'))
        diagnostics += _step_rules(idx, step)
    return diagnostics


def _resolved(idx: Index, value: Any) -> Any:
    """A ParamRef's value for this run (its default, overridden from the command line); else itself."""
    if isinstance(value, ir.ParamRef):
        param = idx.params.get(value.name)
        return param.default if param is not None else None
    return value


def _step_rules(idx: Index, step: ir.Step) -> list[Diagnostic]:
    """Rules that involve more than one option of a step."""
    out = []
    if isinstance(step, ir.Score) and (step.model is None) == (step.registry is None):
        out.append(Diagnostic(
            "E307", f"{where(step)}needs exactly one of 'model' (a train step) or 'registry' (a registered model)",
            name_span(step), "write model = <train step> to score a model of this run, or registry = \"name\""))
    elif isinstance(step, ir.Source):
        if step.format in ("csv", "parquet") and not step.path:
            out.append(Diagnostic("E308", f"{where(step)}a {step.format} source needs a path", name_span(step)))
        if step.format == "sql" and (step.connection is None or not (step.query or step.table)):
            out.append(Diagnostic("E308", f"{where(step)}an sql source needs a connection and a query or table",
                                  name_span(step), 'e.g. connection = env("DB_URL")  table = "penguins"'))
    elif isinstance(step, ir.Check):
        for rule in step.rules:
            if isinstance(rule, ir.ColumnRule):
                low, high = _resolved(idx, rule.min), _resolved(idx, rule.max)
                if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
                    out.append(Diagnostic("E303", f"{where(step)}column {rule.column}: range {low} to {high} is empty",
                                          rule.span, "write the smaller bound first"))
    elif isinstance(step, ir.Split) and step.stratify is not None and step.time_column is not None:
        # A time split takes the latest rows as the test set; class proportions cannot be kept too.
        out.append(Diagnostic("E303", f"{where(step)}'stratify' and 'time_column' exclude each other",
                              span_of(step, "time_column"), "keep one: a random stratified split or a split by time"))
    elif isinstance(step, ir.Train) and step.tune is not None:
        for key, values in step.tune.space.items():
            if not values:
                out.append(Diagnostic("E303", f"{where(step)}tuning parameter '{key}' has no values",
                                      span_of(step.tune, f"space.{key}")))
    elif isinstance(step, ir.Monitor):
        for rule in step.drift:
            if rule.measure == "pvalue" and isinstance(rule.threshold, (int, float)) \
                    and not 0 <= rule.threshold <= 1:
                out.append(Diagnostic("E303", f"{where(step)}a p-value threshold must be between 0 and 1, "
                                      f"got {rule.threshold}", rule.span))
    return out
