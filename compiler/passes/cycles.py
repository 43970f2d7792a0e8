"""References (and `after`) must not form a cycle; each cycle is printed as a path.

    train m on s.train { ... }    evaluate e { model = m  data = s.test }
    split s from e.predictions    # E210: cycle: s -> m -> e -> s
"""
from __future__ import annotations

from .. import ir
from ..errors import Diagnostic
from .common import index, name_span


def check_cycles(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    # producer -> consumers, in spec order; self references are reported by check_references.
    edges = {name: [] for name in idx.steps}
    for name, uses in idx.consumers.items():
        for consumer, _, _ in uses:
            if consumer.name != name and consumer.name not in edges[name]:
                edges[name].append(consumer.name)

    diagnostics = []
    state: dict[str, int] = {}          # 1 = on the current path, 2 = finished
    for root in idx.steps:
        if root in state:
            continue
        # Iterative DFS: a 1000-step chain would overflow Python's recursion limit.
        path, stack = [root], [iter(edges[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                diagnostics.append(_cycle(idx, path[path.index(nxt):]))
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(edges[nxt]))
    return diagnostics


def _cycle(idx, members: list[str]) -> Diagnostic:
    # Start the printed path at the step written first, so the message does not depend on DFS order.
    first = min(range(len(members)), key=lambda i: idx.position[members[i]])
    members = members[first:] + members[:first]
    step = idx.steps[members[0]]
    return Diagnostic("E210", "cycle: " + " -> ".join(members + members[:1]), name_span(step),
                      "steps may only read outputs of steps that do not depend on them")
