"""Fill every `Ref.port` left empty with the producer kind's DEFAULT_PORT, so backends and the
runtime never guess: `model = species_model` becomes `species_model.model`.

References that `check_references` rejected (unknown step, a split without a port) stay as they
are; `after` refs to a split keep `None`, since `after` orders whole steps.
"""
from __future__ import annotations

from .. import ir
from .common import index, inputs_of


def fill_default_ports(pipeline: ir.Pipeline) -> ir.Pipeline:
    idx = index(pipeline)

    def filled(ref: ir.Ref) -> ir.Ref:
        producer = idx.steps.get(ref.step)
        if ref.port is not None or producer is None or producer.DEFAULT_PORT is None:
            return ref
        return ref.model_copy(update={"port": producer.DEFAULT_PORT})

    steps = []
    for step in pipeline.steps:
        update: dict = {name: filled(ref) for name, ref in inputs_of(step).items() if ref.port is None}
        if any(ref.port is None for ref in step.after):
            update["after"] = tuple(filled(ref) for ref in step.after)
        steps.append(step.model_copy(update=update) if update else step)
    return pipeline.model_copy(update={"steps": tuple(steps)})
