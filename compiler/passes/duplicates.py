"""Step and param names must be unique: references and generated task names are keyed by them.

    source penguins { csv = "a.csv" }
    source penguins { csv = "b.csv" }     # E201: step 'penguins' is defined twice
"""
from __future__ import annotations

from .. import ir
from ..errors import Diagnostic
from .common import name_span


def check_duplicate_names(pipeline: ir.Pipeline) -> list[Diagnostic]:
    diagnostics = []
    for code, what, nodes in (("E201", "step", pipeline.steps), ("E202", "param", pipeline.params)):
        first: dict[str, ir.Node] = {}
        for node in nodes:
            if node.name in first:
                earlier = first[node.name].span
                hint = f"first defined at {earlier}" if earlier else None
                diagnostics.append(Diagnostic(code, f"{what} '{node.name}' is defined twice", name_span(node), hint))
            else:
                first[node.name] = node
    return diagnostics
