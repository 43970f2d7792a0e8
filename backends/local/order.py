"""Which steps wait for which: from the IR's references (`Step.refs()`, `after` included),
ordered with the stdlib's graphlib, so that a run needs no networkx."""
from __future__ import annotations

import graphlib

from mlopsc.compiler import ir


def reads(step: ir.Step) -> dict[str, ir.Ref]:
    """The inputs a step reads when it runs: `Step.inputs()`, but for a monitor whose `model`
    has a deploy (link_monitors gave it that deploy's `registry`), which scores the deployed
    model and so neither reads nor waits for a newly trained one. Prefect and Kubeflow leave that
    input out the same way: its train step is not in the monitor's flow (`monitor_steps`)."""
    inputs = step.inputs()
    if isinstance(step, ir.Monitor) and step.registry is not None:
        inputs.pop("model", None)
    return inputs


def dependencies(pipeline: ir.Pipeline) -> dict[str, tuple[str, ...]]:
    """step -> the steps whose outputs it reads or that it must wait for (`after`)."""
    return {s.name: tuple(sorted({ref.step for ref in [*reads(s).values(), *s.after]})) for s in pipeline.steps}


def downstream(deps: dict[str, tuple[str, ...]], name: str) -> set[str]:
    consumers: dict[str, set[str]] = {}
    for step, producers in deps.items():
        for producer in producers:
            consumers.setdefault(producer, set()).add(step)
    found, todo = set(), [name]
    while todo:
        for consumer in consumers.get(todo.pop(), ()):
            if consumer not in found:
                found.add(consumer)
                todo.append(consumer)
    return found


def with_upstream(deps: dict[str, tuple[str, ...]], names: list[str]) -> list[str]:
    """names plus everything they depend on, in topological order."""
    needed, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(deps[name])
    order = graphlib.TopologicalSorter({n: deps[n] for n in needed}).static_order()
    return list(order)
