"""Warnings: specs that compile but probably do not do what their author meant.

    deploy svc { model = m  registry = "r" }     # W401: deploys a model that no gate guards
    source old { csv = "old.csv" }               # W402: nothing reads source 'old'
    check q on d { ... }  (and nothing reads d)  # W403: check q guards nothing
"""
from __future__ import annotations

import difflib

from .. import ir
from ..errors import Diagnostic
from .common import index, name_span, refs_of, where, written


def warn_unguarded_deploys(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics = []
    for deploy in pipeline.steps:
        if not isinstance(deploy, ir.Deploy):
            continue
        if not _gate_upstream(idx, deploy):
            diagnostics.append(Diagnostic(
                "W401", f"{where(deploy)}deploys a model that no gate guards", name_span(deploy),
                "add a gate on an evaluate of this model and write after = <gate> in the deploy",
                severity="warning"))
    return diagnostics


def _gate_upstream(idx, step: ir.Step) -> bool:
    seen, todo = {step.name}, [step]
    while todo:
        for _, ref in refs_of(todo.pop()):
            producer = idx.steps.get(ref.step)
            if producer is None or producer.name in seen:
                continue
            if isinstance(producer, ir.Gate):
                return True
            seen.add(producer.name)
            todo.append(producer)
    return False


def warn_unused_sources(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    # A source read only through a misspelt reference already has an error pointing at it.
    misspelt = {ref.step for step in pipeline.steps for _, ref in refs_of(step) if ref.step not in idx.steps}
    return [Diagnostic("W402", f"nothing reads source '{step.name}'", name_span(step),
                       "remove it, or use it in a step", severity="warning")
            for step in pipeline.steps if isinstance(step, ir.Source) and not idx.consumers.get(step.name)
            and not difflib.get_close_matches(step.name, misspelt, n=1, cutoff=0.6)]


def warn_idle_checks(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics = []
    for check in pipeline.steps:
        if not isinstance(check, ir.Check) or idx.steps.get(check.data.step) is None:
            continue
        readers = [s for s, fieldname, ref in idx.consumers.get(check.data.step, ())
                   if fieldname != "after" and not isinstance(s, ir.Check) and ref.port == check.data.port]
        if not readers:
            diagnostics.append(Diagnostic(
                "W403", f"{where(check)}guards nothing: no step but checks reads '{written(idx, check.data)}'", name_span(check),
                severity="warning"))
    return diagnostics
