"""Helpers the passes share: a per-pipeline index, per-kind field tables, spans, "did you mean"."""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..errors import Diagnostic


def _types_in(annotation: Any) -> set:
    """Every class an annotation mentions, inside unions, tuples, dicts and Annotated too."""
    import typing

    args = typing.get_args(annotation)
    found = {annotation} if isinstance(annotation, type) else set()
    return found.union(*(_types_in(arg) for arg in args)) if args else found


# Step.inputs() iterates every field through pydantic; on a 1000-step spec the passes call it
# thousands of times, so each kind's data-input fields (those that admit a Ref) are found once.
REF_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(name for name, info in cls.model_fields.items()
               if name != "after" and ir.Ref in _types_in(info.annotation))
    for cls in ir.STEP_KINDS.values()}


def inputs_of(step: ir.Step) -> dict[str, ir.Ref]:
    """Like `Step.inputs()`: the data inputs, keyed by field."""
    values = step.__dict__
    return {name: values[name] for name in REF_FIELDS[type(step)] if values[name] is not None}


def refs_of(step: ir.Step) -> list[tuple[str, ir.Ref]]:
    """Like `Step.refs()`: every reference, `after` included, as (field, ref)."""
    return list(inputs_of(step).items()) + [("after", ref) for ref in step.after]


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
            if step.name not in index.steps:
                index.steps[step.name] = step
                index.position[step.name] = i
                index.consumers[step.name] = []
        for param in pipeline.params:
            index.params.setdefault(param.name, param)
        for step in pipeline.steps:
            for fieldname, ref in refs_of(step):
                uses = index.consumers.get(ref.step)
                if uses is not None:
                    uses.append((step, fieldname, ref))
        return index

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


_LEAVES = (ir.Span, ir.Ref, ir.ParamRef, ir.EnvRef, ir.SecretRef)
NODE_CLASSES = [cls for cls in vars(ir).values()
                if isinstance(cls, type) and issubclass(cls, ir.Node) and cls not in _LEAVES]
# Per node class, the fields that may hold option blocks or rules (Resources, Tune, CheckRule ...),
# and those that may hold a ParamRef, found once from the annotations: walking every field of
# every step through pydantic is the slowest part of checking a 1000-step spec otherwise.
BLOCK_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(name for name, info in cls.model_fields.items() if name not in ("span", "spans") and any(
        issubclass(t, ir.Node) and not issubclass(t, _LEAVES) for t in _types_in(info.annotation)))
    for cls in NODE_CLASSES}
PARAM_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(name for name, info in cls.model_fields.items() if ir.ParamRef in _types_in(info.annotation))
    for cls in NODE_CLASSES}


def option_nodes(step: ir.Step) -> list[ir.Node]:
    """The step and every option block and rule nested in it (resources, tune, estimator, check
    and gate rules, drift rules, serving ...)."""
    out, todo = [], [step]
    while todo:
        node = todo.pop()
        out.append(node)
        for name in BLOCK_FIELDS[type(node)]:
            value = node.__dict__[name]
            if isinstance(value, tuple):
                todo.extend(v for v in value if isinstance(v, ir.Node))
            elif isinstance(value, ir.Node):
                todo.append(value)
    return out


def param_refs_of(step: ir.Step) -> Iterator[tuple[ir.Node, str, ir.ParamRef]]:
    """(owning node, field name, ParamRef) for every ParamRef in `step`, nested nodes included."""
    for owner in option_nodes(step):
        for name in PARAM_FIELDS[type(owner)]:
            value = owner.__dict__[name]
            if isinstance(value, ir.ParamRef):
                yield owner, name, value
            elif isinstance(value, dict):       # estimator params: `C = params.c`, `alphas = [params.a, 1]`
                for item in value.values():
                    for member in item if isinstance(item, list) else (item,):
                        if isinstance(member, ir.ParamRef):
                            yield owner, name, member


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


def source_of(idx: Index, ref: ir.Ref | None, seen: frozenset[str] = frozenset()) -> ir.Source | None:
    """The source a dataset comes from, through splits."""
    step = idx.steps.get(ref.step) if ref is not None else None
    if step is None or step.name in seen:
        return None
    if isinstance(step, ir.Source):
        return step
    if isinstance(step, ir.Split):
        return source_of(idx, step.data, seen | {step.name})
    return None


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
