"""Every reference names a defined step and one of its output ports.

    evaluate e { model = species_modle ... }   # E203: unknown step 'species_modle'
    train t on penguins_split { ... }          # E205: split has two outputs: name one of train, test
"""
from __future__ import annotations

from .. import ir
from ..errors import Diagnostic
from .common import index, refs_of, unknown, where


def check_references(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics = []
    for step in pipeline.steps:
        for fieldname, ref in refs_of(step):
            producer = idx.steps.get(ref.step)
            if producer is None:
                diagnostics.append(unknown("E203", "step", ref.step, idx.steps, ref.span or step.span,
                                           context=f"{where(step)}'{fieldname}' refers to an "))
            elif ref.step == step.name:
                diagnostics.append(Diagnostic("E210", f"{where(step)}refers to itself", ref.span or step.span))
            elif ref.port is not None and ref.port not in producer.OUTPUTS:
                diagnostics.append(unknown(
                    "E204", f"output of {producer.KIND} '{producer.name}'", ref.port, producer.OUTPUTS,
                    ref.span or step.span, context=where(step)))
            elif ref.port is None and producer.DEFAULT_PORT is None and fieldname != "after":
                outputs = ", ".join(producer.OUTPUTS)
                diagnostics.append(Diagnostic(
                    "E205", f"{where(step)}{producer.KIND} has two outputs: name one of {outputs}",
                    ref.span or step.span, f"write {ref.step}.{next(iter(producer.OUTPUTS))}"))
    return diagnostics
