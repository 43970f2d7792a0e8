"""The front end after parsing: an ordered tuple of small passes (sqlglot's optimizer RULES).

Each pass is `Pipeline -> Pipeline` (it completes the IR) or `Pipeline -> list[Diagnostic]` (it
checks it). `run_passes` applies them in order and collects every diagnostic, so one run reports
all errors. Checks tolerate IR that earlier checks rejected (unknown steps, cycles): they skip
what they cannot judge rather than fail.
"""
from __future__ import annotations

from collections.abc import Callable

from .. import ir
from ..errors import Diagnostic
from .columns import check_columns
from .cycles import check_cycles
from .duplicates import check_duplicate_names
from .estimator_names import check_estimators
from .expressions import check_expressions
from .fairness import add_fairness_predictions
from .guards import guard_with_checks
from .link_gates import link_gates_to_deploys
from .link_monitors import link_monitors_to_deploys
from .link_served_sources import link_served_sources
from .lint import warn_idle_checks, warn_unguarded_deploys, warn_unused_sources
from .metric_names import check_metric_names
from .monitor_rules import check_monitor_rules
from .params import check_params
from .port_types import check_port_types
from .ports import fill_default_ports
from .references import check_references
from .schedules import check_schedules
from .served_sources import check_served_sources
from .values import check_values

Pass = Callable[[ir.Pipeline], "ir.Pipeline | list[Diagnostic]"]

PASSES: tuple[Pass, ...] = (
    check_duplicate_names,
    check_references,
    fill_default_ports,          # every Ref.port is set from here on
    check_port_types,
    guard_with_checks,           # consumers of a stop-check's dataset wait for the check
    check_cycles,                # after guards: their edges count too
    check_params,
    check_values,
    check_schedules,
    check_columns,
    check_expressions,
    check_estimators,
    check_metric_names,
    check_served_sources,
    check_monitor_rules,
    link_gates_to_deploys,
    add_fairness_predictions,
    link_monitors_to_deploys,
    link_served_sources,
    warn_unguarded_deploys,
    warn_unused_sources,
    warn_idle_checks,
)


def run_passes(pipeline: ir.Pipeline, passes: tuple[Pass, ...] = PASSES) -> tuple[ir.Pipeline, list[Diagnostic]]:
    """The pipeline after every IR pass, and every diagnostic of every check."""
    diagnostics: list[Diagnostic] = []
    for apply in passes:
        result = apply(pipeline)
        if isinstance(result, ir.Pipeline):
            pipeline = result
        else:
            diagnostics.extend(result)
    return pipeline, diagnostics
