"""A served source reads the log folder of its deploy's registry (`<state folder>/serving/<registry>/`,
unless `log` says where), so it gets the deploy's registry.

    deploy svc { model = m  registry = "penguins" }
    source live { served = svc }         # live.registry = "penguins"
"""
from __future__ import annotations

from .. import ir
from .common import index


def link_served_sources(pipeline: ir.Pipeline) -> ir.Pipeline:
    """A served source's `registry` is its deploy's (whose log the server writes)."""
    idx = index(pipeline)
    steps = []
    for step in pipeline.steps:
        if isinstance(step, ir.Source) and step.format == "served" and step.registry is None:
            deploy = idx.steps.get(step.served or "")
            if isinstance(deploy, ir.Deploy):
                step = step.model_copy(update={"registry": deploy.registry})
        steps.append(step)
    return pipeline.model_copy(update={"steps": tuple(steps)})
