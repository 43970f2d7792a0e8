"""Schedules (the pipeline's and each monitor's) must be valid 5-field cron strings.

    schedule = "0 25 * * *"    # E304: invalid schedule: hour: 25 is out of range 0-23
"""
from __future__ import annotations

from .. import ir
from ..cron import cron_error
from ..errors import Diagnostic
from .common import span_of, where

HINT = 'cron fields are "minute hour day-of-month month day-of-week", e.g. "0 6 * * 1" (Mondays at 06:00)'


def check_schedules(pipeline: ir.Pipeline) -> list[Diagnostic]:
    owners: list[tuple[str, ir.Node]] = [("", pipeline)]
    owners += [(where(s), s) for s in pipeline.steps if isinstance(s, ir.Monitor)]
    diagnostics = []
    for prefix, owner in owners:
        if owner.schedule is not None and (problem := cron_error(owner.schedule)):
            diagnostics.append(Diagnostic("E304", f"{prefix}invalid schedule {owner.schedule!r}: {problem}",
                                          span_of(owner, "schedule"), HINT))
    return diagnostics
