"""Fairness rules are computed on predictions, so a gate with one also reads its evaluate step's
predictions: `gate g on e { require demographic_parity(sex) <= 0.1 }` gets `predictions = e.predictions`.
"""
from __future__ import annotations

from .. import ir


def add_fairness_predictions(pipeline: ir.Pipeline) -> ir.Pipeline:
    steps = []
    for step in pipeline.steps:
        if isinstance(step, ir.Gate) and step.predictions is None \
                and any(isinstance(rule, ir.FairnessRule) for rule in step.rules):
            predictions = ir.Ref(step=step.metrics.step, port="predictions", span=step.metrics.span)
            step = step.model_copy(update={"predictions": predictions})
        steps.append(step)
    return pipeline.model_copy(update={"steps": tuple(steps)})
