"""A gate with champion rules compares with the model that holds the registry alias now; which
registry is the one of the deploy it guards (a deploy whose `after` names the gate).

    gate release on e { require f1_macro >= champion.f1_macro - 0.01 }
    deploy svc { model = m  after = release  registry = "penguins" }   # release.registry = "penguins"
"""
from __future__ import annotations

from .. import ir


def link_gates_to_deploys(pipeline: ir.Pipeline) -> ir.Pipeline:
    guarded: dict[str, ir.Deploy] = {}              # gate name -> first deploy that waits for it
    for step in pipeline.steps:
        if isinstance(step, ir.Deploy):
            for ref in step.after:
                guarded.setdefault(ref.step, step)
    steps = []
    for step in pipeline.steps:
        deploy = guarded.get(step.name)
        if isinstance(step, ir.Gate) and deploy is not None and step.registry is None \
                and any(isinstance(rule, ir.ChampionRule) for rule in step.rules):
            step = step.model_copy(update={"registry": deploy.registry, "alias": deploy.alias})
        steps.append(step)
    return pipeline.model_copy(update={"steps": tuple(steps)})
