"""A monitor of a deployed model scores the registered model (registry@alias) for prediction
drift, instead of re-running training on its own schedule.

    deploy svc { model = m  registry = "penguins" }
    monitor d { model = m ... }          # d.registry = "penguins", d.alias = svc's alias
"""
from __future__ import annotations

from .. import ir


def link_monitors_to_deploys(pipeline: ir.Pipeline) -> ir.Pipeline:
    deployed: dict[str, ir.Deploy] = {}             # train step name -> first deploy of its model
    for step in pipeline.steps:
        if isinstance(step, ir.Deploy):
            deployed.setdefault(step.model.step, step)
    steps = []
    for step in pipeline.steps:
        if isinstance(step, ir.Monitor) and step.model is not None and step.registry is None:
            deploy = deployed.get(step.model.step)
            if deploy is not None:
                step = step.model_copy(update={"registry": deploy.registry, "alias": deploy.alias})
        steps.append(step)
    return pipeline.model_copy(update={"steps": tuple(steps)})
