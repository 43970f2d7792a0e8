"""Drawings of a Program's step graph: Mermaid and Graphviz DOT text, PNG/SVG through `dot`.

Nodes are labelled `kind name`; data edges by the port they carry (`train`, `model`), ordering-only
edges (`after`, including those added for stop-checks) are dashed. Monitors, which run on their own
schedule, are drawn dashed too.
"""
from __future__ import annotations

import shutil
import subprocess

from .graph import PipelineGraph

# Words Mermaid reads as keywords when used as a node id.
_MERMAID_RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click",
                     "linkstyle", "default", "direction"}
_MERMAID_SHAPE = {"source": ('[("', '")]'), "check": ('{{"', '"}}'), "gate": ('{"', '"}')}
_DOT_SHAPE = {"source": "cylinder", "check": "hexagon", "gate": "diamond", "deploy": "box3d",
              "monitor": "box"}


class GraphvizError(Exception):
    """`dot` is not installed, or it failed; the message says what to do."""


def _label(ports: list[tuple[str, str | None]]) -> tuple[str, bool]:
    """The edge label and whether the edge only orders (every carried ref is an `after`)."""
    data = [port or field for field, port in ports if field != "after"]
    return (", ".join(dict.fromkeys(data)) if data else "after"), not data


def to_mermaid(graph: PipelineGraph) -> str:
    def node_id(name: str) -> str:
        return f"{name}_" if name.lower() in _MERMAID_RESERVED else name

    lines = ["flowchart LR"]
    for name in graph.order():
        kind = graph.step(name).KIND
        opening, closing = _MERMAID_SHAPE.get(kind, ('["', '"]'))
        lines.append(f"  {node_id(name)}{opening}{kind} {name}{closing}")
    for producer, consumer, ports in graph.edges():
        label, ordering = _label(ports)
        arrow = "-.->" if ordering else "-->"
        lines.append(f"  {node_id(producer)} {arrow}|{label}| {node_id(consumer)}")
    monitors = [node_id(n) for n in graph.order() if graph.step(n).KIND == "monitor"]
    if monitors:
        lines.append("  classDef monitor stroke-dasharray: 5 5")
        lines.append(f"  class {','.join(monitors)} monitor")
    return "\n".join(lines) + "\n"


def to_dot(graph: PipelineGraph) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {quoted(graph.pipeline.name)} {{", "  rankdir=LR;",
             '  node [shape=box, style=rounded, fontname="Helvetica"];', '  edge [fontname="Helvetica"];']
    for name in graph.order():
        kind = graph.step(name).KIND
        label = quoted(f"{kind}\n{name}").replace("\n", "\\n")      # DOT's own escape for a line break
        attrs = [f"label={label}", f"shape={_DOT_SHAPE.get(kind, 'box')}"]
        if kind == "monitor":
            attrs.append('style="rounded,dashed"')
        lines.append(f"  {quoted(name)} [{', '.join(attrs)}];")
    for producer, consumer, ports in graph.edges():
        label, ordering = _label(ports)
        style = ", style=dashed" if ordering else ""
        lines.append(f"  {quoted(producer)} -> {quoted(consumer)} [label={quoted(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_image(dot_text: str, fmt: str, out: str) -> None:
    """Write `fmt` (png or svg) to `out` with Graphviz; GraphvizError when `dot` is absent or fails."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(
            f"drawing {fmt} needs Graphviz's 'dot' program, which is not on PATH. Install it "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), "
            "or use --format mermaid or --format dot")
    done = subprocess.run([dot, f"-T{fmt}", "-o", out], input=dot_text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GraphvizError(f"dot failed: {done.stderr.strip()}")
