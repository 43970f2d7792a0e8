"""One version of a document, analysed: the diagnostics `mlopsc check` would print, and the
pipeline as written with where each step and param is defined and referenced.

The pipeline is the IR the parser builds, before the passes: what the user wrote, with spans on
every name (the passes add `after` references that no one wrote). A version that does not parse
(typing `model = ` is a syntax error until the name is there) keeps the last pipeline that did,
marked `current = False`: completion still knows the steps, columns and metrics.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from .. import ir
from ..errors import Diagnostic, SpecError
from ..expression import ExprNode, ParamValue
from ..expression_parser import inner_span
from ..passes.common import Index, param_refs_of, refs_of


@dataclass(frozen=True)
class Reference:
    """A name written where a step or a param is meant: `penguins_split.train`, `params.x`,
    `after = release`, `served = species_service`."""

    target: Literal["step", "param"]
    name: str
    span: ir.Span                # the name alone: `penguins_split`, `x`
    written: ir.Span             # the whole reference: `penguins_split.train`, `params.x`
    port: str | None


class Symbols:
    """Definitions and references of one pipeline as written."""

    def __init__(self, pipeline: ir.Pipeline):
        self.pipeline = pipeline
        self.steps: dict[str, ir.Step] = {}         # spec order; the first of a name defines it
        self.params: dict[str, ir.Param] = {}
        for step in pipeline.steps:
            self.steps.setdefault(step.name, step)
        for param in pipeline.params:
            self.params.setdefault(param.name, param)

    @cached_property
    def references(self) -> list[Reference]:
        """Built when a feature first asks: publishing diagnostics does not need them."""
        return [ref for step in self.pipeline.steps for ref in _references(step)]

    @cached_property
    def index(self) -> Index:
        """The passes' index of this pipeline (built here, not cached module-wide: that cache is
        the passes', on the analysing thread)."""
        return Index.build(self.pipeline)

    def step_name_span(self, step: ir.Step) -> ir.Span | None:
        return step.spans.get("name", step.span)

    def param_name_span(self, param: ir.Param) -> ir.Span | None:
        """`test_size: float = 0.25` starts with the name."""
        span = param.span
        return span and span.model_copy(update={"end_line": span.line, "end_col": span.col + len(param.name)})

    def defined_at(self, line: int, col: int) -> ir.Span | None:
        """The name of the step or param whose definition starts at (line, col)."""
        for step in self.steps.values():
            if step.span is not None and (step.span.line, step.span.col) == (line, col):
                return self.step_name_span(step)
        for param in self.params.values():
            if param.span is not None and (param.span.line, param.span.col) == (line, col):
                return self.param_name_span(param)
        return None

    def definition(self, what: str, name: str) -> ir.Span | None:
        """Where the step or param `name` is defined (its name), if it is."""
        if what == "step":
            step = self.steps.get(name)
            return self.step_name_span(step) if step else None
        param = self.params.get(name)
        return self.param_name_span(param) if param else None


def _references(step: ir.Step) -> list[Reference]:
    found = []
    for _, ref in refs_of(step):
        if ref.span is not None:
            name = ref.span.model_copy(update={"end_line": ref.span.line, "end_col": ref.span.col + len(ref.step)})
            found.append(Reference("step", ref.step, name, ref.span, ref.port))
    for _, _, ref in param_refs_of(step):
        if ref.span is not None:
            name = ref.span.model_copy(update={"line": ref.span.end_line, "col": ref.span.end_col - len(ref.name)})
            found.append(Reference("param", ref.name, name, ref.span, None))
    for expression in _expressions(step):
        for node in _param_values(expression.tree):
            span = inner_span(expression.span, expression.text, node.at, node.to)
            if span is not None and span.line == span.end_line:
                name = span.model_copy(update={"col": span.end_col - len(node.name)})
                found.append(Reference("param", node.name, name, span, None))
    if isinstance(step, ir.Source) and step.served and "served" in step.spans:
        span = step.spans["served"]
        found.append(Reference("step", step.served, span, span, None))
    return found


def _expressions(step: ir.Step) -> list[ir.Expression]:
    if isinstance(step, ir.Source):
        return [step.filter] if step.filter is not None and step.filter.span is not None else []
    if isinstance(step, ir.Check):
        return [r.expression for r in step.rules if isinstance(r, ir.ExpressionRule) and r.expression.span]
    return []


def _param_values(node: ExprNode) -> list[ParamValue]:
    """The `params.NAME` of an expression tree."""
    if isinstance(node, ParamValue):
        return [node]
    found = []
    for value in node.__dict__.values():
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, ExprNode):
                found += _param_values(child)
    return found


@dataclass
class Analysis:
    version: int | None
    text: str
    diagnostics: list[Diagnostic]
    symbols: Symbols | None = None       # of this version, or of the last one that parsed
    current: bool = False                # symbols are of this very version
    file: str = field(default="<string>")


def analyse(text: str, file: str, version: int | None = None, previous: Analysis | None = None) -> Analysis:
    """Diagnose `text` as `mlopsc check FILE` does (the same code path: build, then the passes).

    The cyclic garbage collector is off meanwhile, as `mlopsc check` has it (compiler/cli.py):
    building the IR allocates many objects and no cycles, and the collector's passes over them
    were a sixth of a 1000-step analysis. They are freed by reference counting as ever."""
    gc.disable()
    try:
        return _analyse(text, file, version, previous)
    finally:
        gc.enable()


def _analyse(text: str, file: str, version: int | None, previous: Analysis | None) -> Analysis:
    from ..parser import build
    from ..program import sort_diagnostics, validate

    try:
        written, unbuilt = build(text, file)
    except SpecError as exc:
        symbols = previous.symbols if previous is not None else None
        return Analysis(version, text, sort_diagnostics(exc.diagnostics), symbols, False, file)
    _, diagnostics = validate(written, None, unbuilt)
    return Analysis(version, text, diagnostics, Symbols(written), True, file)
