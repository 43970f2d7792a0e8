"""A `check ... on_fail = stop` guards its dataset: every step that reads that dataset (other than
other checks) waits for the check, so a failed check stops them. Backends then need no special
case; the edge is an ordinary `after`.

    check q on penguins { ... on_fail = stop }
    split s from penguins { ... }      # becomes: split s from penguins { after = q ... }
"""
from __future__ import annotations

from .. import ir
from .common import index


def guard_with_checks(pipeline: ir.Pipeline) -> ir.Pipeline:
    idx = index(pipeline)
    guards: dict[str, list[ir.Ref]] = {}          # consumer name -> check refs to add
    for check in pipeline.steps:
        if not isinstance(check, ir.Check) or check.on_fail != "stop":
            continue
        for consumer, fieldname, ref in idx.consumers.get(check.data.step, ()):
            if fieldname != "after" and ref.port == check.data.port and not isinstance(consumer, ir.Check):
                guard = ir.Ref(step=check.name, port=check.DEFAULT_PORT, span=check.span)
                if guard not in guards.setdefault(consumer.name, []):
                    guards[consumer.name].append(guard)
    if not guards:
        return pipeline
    steps = []
    for step in pipeline.steps:
        added = [g for g in guards.get(step.name, ()) if all(r.step != g.step for r in step.after)]
        steps.append(step.model_copy(update={"after": step.after + tuple(added)}) if added else step)
    return pipeline.model_copy(update={"steps": tuple(steps)})
