"""The run's step graph as an SVG picture, each step coloured by its status.

With Graphviz's `dot` on PATH it lays the graph out (`dot -Tsvg`); without it, a layered layout of
our own (a step's column is one more than its deepest input's), so a report never needs Graphviz.
Either way the picture is built from the run record's `graph` (step -> [[field, producer, port]])
and its steps' statuses and durations. Standard library only.
"""
from __future__ import annotations

import graphlib
import shutil
import subprocess
from dataclasses import dataclass
from html import escape

# status -> (fill, border); the legend in the report uses the same words.
STATUS_COLOURS = {
    "ok": ("#e3f2e5", "#2e7d32"), "cached": ("#e1f0fb", "#1565c0"), "failed": ("#fde4e4", "#c62828"),
    "skipped": ("#f1f1f1", "#8a8a8a"), "not_run": ("#f7f7f7", "#b0b0b0"), "running": ("#fff6d6", "#b28704"),
}
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 168, 52, 56, 22, 12
DOT_TIMEOUT = 10


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    status: str
    duration: float | None

    @property
    def caption(self) -> str:
        """The second line of a node: kind, status, and how long it took when it ran."""
        took = f" · {self.duration:.1f} s" if self.status == "ok" and self.duration is not None else ""
        return f"{self.kind} · {self.status.replace('_', ' ')}{took}"


def edges_of(graph: dict[str, list[list[str]]], present: set[str]) -> list[tuple[str, str, bool]]:
    """(producer, consumer, ordering only) for every reference between steps of the run."""
    found: dict[tuple[str, str], bool] = {}
    for consumer, refs in graph.items():
        for field, producer, _port in refs:
            if producer in present and consumer in present:
                key = (producer, consumer)
                found[key] = found.get(key, True) and field == "after"
    return [(p, c, ordering) for (p, c), ordering in found.items()]


def graph(nodes: list[list], edges: list[list]) -> str:
    """The drawing function of a report's graph figure: nodes as [name, kind, status, duration]."""
    return graph_svg([Node(*n) for n in nodes], [tuple(e) for e in edges])


def graph_svg(nodes: list[Node], edges: list[tuple[str, str, bool]], use_dot: bool = True) -> str:
    dot = shutil.which("dot") if use_dot else None
    if dot is not None:
        try:
            done = subprocess.run([dot, "-Tsvg"], input=to_dot(nodes, edges), capture_output=True, text=True,
                                  timeout=DOT_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0 and "<svg" in done.stdout:
            return done.stdout
    return layered_svg(nodes, edges)


def to_dot(nodes: list[Node], edges: list[tuple[str, str, bool]]) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph run {", "  rankdir=LR; bgcolor=transparent; nodesep=0.25; ranksep=0.45;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=1.6];',
             '  edge [color="#777777", arrowsize=0.7];']
    for node in nodes:
        fill, border = STATUS_COLOURS.get(node.status, STATUS_COLOURS["not_run"])
        label = quoted(f"{node.name}\n{node.caption}").replace("\n", "\\n")
        lines.append(f"  {quoted(node.name)} [label={label}, fillcolor={quoted(fill)}, color={quoted(border)}];")
    for producer, consumer, ordering in edges:
        style = " [style=dashed]" if ordering else ""
        lines.append(f"  {quoted(producer)} -> {quoted(consumer)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def columns(nodes: list[Node], edges: list[tuple[str, str, bool]]) -> dict[str, int]:
    """A step's column: 0 for a step without inputs, else one more than its deepest input's."""
    inputs: dict[str, list[str]] = {}
    for producer, consumer, _ in edges:
        inputs.setdefault(consumer, []).append(producer)
    placed: dict[str, int] = {}
    for name in graphlib.TopologicalSorter({n.name: inputs.get(n.name, ()) for n in nodes}).static_order():
        placed[name] = 1 + max((placed[p] for p in inputs.get(name, ())), default=-1)
    return {node.name: placed[node.name] for node in nodes}


def layered_svg(nodes: list[Node], edges: list[tuple[str, str, bool]]) -> str:
    placed = columns(nodes, edges)
    rows: dict[int, int] = {}
    position: dict[str, tuple[float, float]] = {}
    for node in nodes:
        column = placed[node.name]
        row = rows.get(column, 0)
        rows[column] = row + 1
        position[node.name] = (MARGIN + column * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y))
    width = MARGIN * 2 + (max(placed.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">'),
             ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
              'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>')]
    for producer, consumer, ordering in edges:
        (x1, y1), (x2, y2) = position[producer], position[consumer]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H / 2, y2 + NODE_H / 2
        bend = max((x2 - x1) / 2, 20)
        dash = ' stroke-dasharray="5,4"' if ordering else ""
        parts.append(f'<path d="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}" fill="none" '
                     f'stroke="#777" stroke-width="1.3"{dash} marker-end="url(#arrow)"/>')
    for node in nodes:
        x, y = position[node.name]
        fill, border = STATUS_COLOURS.get(node.status, STATUS_COLOURS["not_run"])
        parts.append(f'<g><title>{escape(node.name)}</title>'
                     f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" '
                     f'stroke="{border}" stroke-width="1.6"/>'
                     f'<text x="{x + NODE_W / 2}" y="{y + 21}" text-anchor="middle" font-size="13">'
                     f'{escape(_fit(node.name, 22))}</text>'
                     f'<text x="{x + NODE_W / 2}" y="{y + 39}" text-anchor="middle" font-size="11" '
                     f'fill="#444">{escape(_fit(node.caption, 28))}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
