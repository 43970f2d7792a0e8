"""Helpers the passes share: a per-pipeline index, spans, "did you mean", and value walking."""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..errors import Diagnostic


@dataclass
class Index:
    """Name lookups over one pipeline, built once per pipeline object (passes run on 1000-step specs,
    so every lookup must be a dict access, not a scan)."""

    pipeline: ir.Pipeline
    steps: dict[str, ir.Step] = field(default_factory=dict)       # first definition wins
    position: dict[str, int] = field(default_factory=dict)        # spec order
    params: dict[str, ir.Param] = field(default_factory=dict)
    consumers: dict[str, list[tuple[ir.Step, str, ir.Ref]]] = field(default_factory=dict)

    @classmethod
    def build(cls, pipeline: ir.Pipeline) -> Index:
        index = cls(pipeline)
        for i, step in enumerate(pipeline.steps):
            index.steps.setdefault(step.name, step)
            index.position.setdefault(step.name, i)
            index.consumers.setdefault(step.name, [])
        for param in pipeline.params:
            index.params.setdefault(param.name, param)
        for step in pipeline.steps:
            for fieldname, ref in step.refs():
                if ref.step in index.consumers:
                    index.consumers[ref.step].append((step, fieldname, ref))
        return index

    def producer(self, ref: ir.Ref) -> ir.Step | None:
        return self.steps.get(ref.step)

    def port_type(self, ref: ir.Ref) -> str | None:
        """The PortType a resolved ref points at, or None if the step or port is unknown."""
        step = self.steps.get(ref.step)
        if step is None:
            return None
        return step.OUTPUTS.get(ref.port or step.DEFAULT_PORT or "")


_last: tuple[ir.Pipeline, Index] | None = None


def index(pipeline: ir.Pipeline) -> Index:
    """The Index of `pipeline`, cached for the pipeline object the passes are looking at now."""
    global _last
    if _last is None or _last[0] is not pipeline:
        _last = (pipeline, Index.build(pipeline))
    return _last[1]


def span_of(node: Any, key: str | None = None) -> ir.Span | None:
    """The span of `node.spans[key]` if the parser recorded one, else the node's own span."""
    spans = getattr(node, "spans", None) or {}
    if key is not None and key in spans:
        return spans[key]
    return getattr(node, "span", None)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def unknown(code: str, what: str, name: str, candidates: Iterable[str], span: ir.Span | None,
            context: str = "") -> Diagnostic:
    """`unknown step 'pengiuns'` + a did-you-mean hint (or the list of choices when there are few)."""
    candidates = sorted(set(candidates))
    hint = did_you_mean(name, candidates)
    if hint is None and candidates and len(candidates) <= 8:
        hint = "expected one of " + ", ".join(candidates)
    return Diagnostic(code, f"{context}unknown {what} '{name}'", span, hint)


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) inside an IR node, depth first; list items are `field.N`."""
    if isinstance(value, ir.Node):
        for name in type(value).model_fields:
            if name in ("span", "spans"):
                continue
            yield from walk(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    yield path, value


def written(idx: Index, ref: ir.Ref) -> str:
    """A reference as a user writes it: `penguins` for the default port, `parts.train` otherwise."""
    producer = idx.steps.get(ref.step)
    return ref.step if producer is not None and ref.port == producer.DEFAULT_PORT else str(ref)


def name_span(step: ir.Node) -> ir.Span | None:
    """Where a step's name is written: a short caret for messages about the whole step."""
    return span_of(step, "name")


def where(step: ir.Step) -> str:
    """`evaluate species_eval: `, the prefix of messages about one step."""
    return f"{step.KIND} {step.name}: "


def train_task(step: ir.Train, pipeline: ir.Pipeline) -> str | None:
    """"classification" or "regression": declared with `task`, else known from the estimator."""
    from ..estimators import lookup

    if step.task is not None:
        return step.task
    info = lookup(step.estimator.name, pipeline.estimators)
    return info.task if info is not None else None
