"""Hover, go to definition, rename and the outline, over the pipeline as written (analysis.py).

What the cursor is on: a step (its kind or name where it is defined, or a reference to it), a
param (`name: type` in `params`, or `params.name`), or an estimator (`sklearn.ensemble.X`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types

from .. import ir
from ..estimators import lookup
from ..lexer import KEYWORDS
from ..passes.common import inputs_of
from ..passes.port_types import EXPECTS
from .analysis import Symbols
from .ranges import Positions, inside

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = {*KEYWORDS, "params", "champion"}


@dataclass(frozen=True)
class Target:
    what: str                     # step | param | estimator
    name: str
    span: ir.Span                 # the name under the cursor
    port: str | None = None       # `split.train`: the port written after the step


def target_at(symbols: Symbols, line: int, col: int) -> Target | None:
    for ref in symbols.references:
        if inside(line, col, ref.written):
            return Target(ref.target, ref.name, ref.span, ref.port)
    for step in symbols.pipeline.steps:
        for key in ("kind", "name"):
            if inside(line, col, step.spans.get(key)):
                return Target("step", step.name, symbols.step_name_span(step))
        if isinstance(step, ir.Train) and step.estimator.span is not None:
            start = step.estimator.span
            name = start.model_copy(update={"end_line": start.line, "end_col": start.col + len(step.estimator.name)})
            if inside(line, col, name):
                return Target("estimator", step.estimator.name, name)
    for param in symbols.pipeline.params:
        span = symbols.param_name_span(param)
        if inside(line, col, span):
            return Target("param", param.name, span)
    return None


# ---------------------------------------------------------------- hover


def hover(symbols: Symbols, line: int, col: int, positions: Positions) -> types.Hover | None:
    target = target_at(symbols, line, col)
    if target is None:
        return None
    if target.what == "estimator":
        text = _estimator_text(symbols, target.name)
    elif target.what == "param":
        param = symbols.params.get(target.name)
        text = _param_text(param) if param else f"`params.{target.name}` is not declared in `params {{ }}`"
    else:
        step = symbols.steps.get(target.name)
        text = _step_text(step, target.port) if step else f"no step is named `{target.name}`"
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                       range=positions.range(target.span))


def _step_text(step: ir.Step, port: str | None) -> str:
    lines = [f"**{step.KIND}** `{step.name}`", ""]
    if port is not None and port in step.OUTPUTS:
        lines += [f"`{step.name}.{port}`: {step.OUTPUTS[port]}", ""]
    outputs = [f"`{p}`: {t}" + (" (default)" if p == step.DEFAULT_PORT else "") for p, t in step.OUTPUTS.items()]
    lines.append("outputs: " + ", ".join(outputs))
    expects = EXPECTS.get(step.KIND, {})
    inputs = [f"`{field}` = `{ref}`" + (f" ({expects[field]})" if field in expects else "")
              for field, ref in inputs_of(step).items()]
    if inputs:
        lines.append("\ninputs: " + ", ".join(inputs))
    if step.after:
        lines.append("\nafter: " + ", ".join(f"`{ref}`" for ref in step.after))
    if step.span is not None:
        lines.append(f"\ndefined at line {step.span.line}")
    return "\n".join(lines)


def _param_text(param: ir.Param) -> str:
    default = f" = {param.default!r}" if param.default is not None else ""
    text = f"**param** `params.{param.name}`: {param.type}{default}"
    if param.description:
        text += f"\n\n{param.description}"
    return text + (f"\n\ndeclared at line {param.span.line}" if param.span else "")


def _estimator_text(symbols: Symbols, name: str) -> str:
    info = lookup(name, symbols.pipeline.estimators)
    if info is None:
        return f"`{name}` is not a known estimator: not scikit-learn's, not in `allow estimators`"
    task = f"a {info.task} estimator" if info.task else "allowed by `allow estimators`; its task is not known"
    text = f"**estimator** `{name}`: {task}"
    if info.params is not None:
        text += "\n\nparameters: " + ", ".join(f"`{p}`" for p in sorted(info.params))
    return text


# ---------------------------------------------------------------- definition and rename


def definition(symbols: Symbols, line: int, col: int) -> ir.Span | None:
    target = target_at(symbols, line, col)
    if target is None or target.what == "estimator":
        return None
    return symbols.definition(target.what, target.name)


def occurrences(symbols: Symbols, target: Target) -> list[ir.Span]:
    """Every place the step or param's name is written: its definitions and its references."""
    if target.what == "step":
        spans = [symbols.step_name_span(s) for s in symbols.pipeline.steps if s.name == target.name]
    else:
        spans = [symbols.param_name_span(p) for p in symbols.pipeline.params if p.name == target.name]
    spans += [r.span for r in symbols.references if r.target == target.what and r.name == target.name]
    return [s for s in spans if s is not None]


def rename_problem(symbols: Symbols, target: Target, new_name: str) -> str | None:
    """Why `new_name` cannot replace the target's name, or None."""
    if not NAME.fullmatch(new_name):
        return f"'{new_name}' is not a name: letters, digits and _, not starting with a digit"
    if new_name in RESERVED:
        return f"'{new_name}' is a word of the language"
    taken = symbols.steps if target.what == "step" else symbols.params
    if new_name != target.name and new_name in taken:
        return f"a {target.what} named '{new_name}' exists already"
    return None


# ---------------------------------------------------------------- outline


def outline(symbols: Symbols, positions: Positions) -> list[types.DocumentSymbol]:
    pipeline = symbols.pipeline
    children = [_symbol(f"params.{p.name}", p.type, types.SymbolKind.Variable, p.span,
                        symbols.param_name_span(p), positions) for p in pipeline.params]
    for step in pipeline.steps:
        detail = step.KIND + (f" ({len(step.OUTPUTS)} outputs)" if len(step.OUTPUTS) > 1 else "")
        children.append(_symbol(step.name, detail, types.SymbolKind.Function, step.span,
                                symbols.step_name_span(step), positions))
    return [_symbol(pipeline.name, "pipeline", types.SymbolKind.Module, pipeline.span, pipeline.spans.get("name"),
                    positions, children)]


def _symbol(name: str, detail: str, kind: types.SymbolKind, span: ir.Span | None, name_span: ir.Span | None,
            positions: Positions, children: list | None = None) -> types.DocumentSymbol:
    return types.DocumentSymbol(name=name, detail=detail, kind=kind, range=positions.range(span),
                                selection_range=positions.range(name_span or span), children=children)
