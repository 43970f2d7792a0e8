"""The step graph of a validated pipeline.

`PipelineGraph` is a thin wrapper over a networkx DiGraph. Nodes are step names (attribute `kind`);
an edge points from PRODUCER to CONSUMER (`split -> train` when the train step reads the split),
built from references and `after`, never from textual order. An edge's `ports` attribute lists the
`(field, port)` pairs it carries (`("data", "train")`; `("after", None)` for ordering only).

networkx costs ~0.16 s to import, so the DiGraph is built on first use: `mlopsc check` never pays.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING

from . import ir

if TYPE_CHECKING:
    import networkx as nx


class PipelineGraph:
    def __init__(self, pipeline: ir.Pipeline) -> None:
        self.pipeline = pipeline
        self._steps = {step.name: step for step in pipeline.steps}
        self._position = {step.name: i for i, step in enumerate(pipeline.steps)}

    @cached_property
    def digraph(self) -> nx.DiGraph:
        import networkx as nx

        graph = nx.DiGraph()
        for step in self.pipeline.steps:
            graph.add_node(step.name, kind=step.KIND)
        for step in self.pipeline.steps:
            for fieldname, ref in step.refs():
                if ref.step not in self._steps:
                    continue        # only a validated pipeline reaches here; be safe for partial IR
                if graph.has_edge(ref.step, step.name):
                    graph.edges[ref.step, step.name]["ports"].append((fieldname, ref.port))
                else:
                    graph.add_edge(ref.step, step.name, ports=[(fieldname, ref.port)])
        return graph

    def step(self, name: str) -> ir.Step:
        return self._steps[name]

    def order(self, names: Iterable[str] | None = None) -> list[str]:
        """`names` (default: every step) in dependency order, ties broken by spec order."""
        import networkx as nx

        graph = self.digraph if names is None else self.digraph.subgraph(names)
        return list(nx.lexicographical_topological_sort(graph, key=self._position.__getitem__))

    def upstream(self, name: str) -> list[str]:
        """Every step `name` depends on, directly or not, in order."""
        import networkx as nx

        return self.order(nx.ancestors(self.digraph, name))

    def downstream(self, name: str) -> list[str]:
        """Every step that depends on `name`, directly or not, in order."""
        import networkx as nx

        return self.order(nx.descendants(self.digraph, name))

    def edges(self) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
        """(producer, consumer, ports) for every edge, in order of the consumer then the producer."""
        return sorted(((a, b, data["ports"]) for a, b, data in self.digraph.edges(data=True)),
                      key=lambda e: (self._position[e[1]], self._position[e[0]]))

    def pipeline_steps(self) -> list[str]:
        """The main run, in order: every step but monitors and the steps only monitors need
        (e.g. a source of current data read by a monitor alone). Monitors run on their own schedule."""
        monitors = {n for n, s in self._steps.items() if isinstance(s, ir.Monitor)}
        feeding_monitors = self._with_ancestors(monitors)
        return self.order(self._with_ancestors(set(self._steps) - feeding_monitors) - monitors)

    def monitor_steps(self, name: str) -> list[str]:
        """Monitor `name` and what it needs, in order: the producers of its reference and current
        data and their ancestors, and its `after` steps (checks guarding its data). Its model's
        producers only when `registry` is None, since otherwise it scores the deployed model."""
        monitor = self._steps[name]
        if not isinstance(monitor, ir.Monitor):
            raise TypeError(f"{monitor.KIND} {name} is not a monitor")
        refs = [monitor.reference, monitor.current, *monitor.after]
        if monitor.model is not None and monitor.registry is None:
            refs.append(monitor.model)
        return self.order(self._with_ancestors({ref.step for ref in refs}) | {name})

    def _with_ancestors(self, names: set[str]) -> set[str]:
        """`names` and all their ancestors, in one walk (not one `nx.ancestors` per name, which is
        quadratic on long chains)."""
        found, todo = set(names), list(names)
        while todo:
            for producer in self.digraph.predecessors(todo.pop()):
                if producer not in found:
                    found.add(producer)
                    todo.append(producer)
        return found
