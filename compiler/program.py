"""The compiler's driver: spec text -> parse -> passes -> `Program`, or one SpecError with everything.

    program = load_program("specs/penguins.mlops", {"test_size": "0.3"})
    program.pipeline    # ir.Pipeline after every pass (ports filled, guards added, registries linked)
    program.graph       # PipelineGraph, edges producer -> consumer
    program.params      # {"test_size": 0.3, "min_accuracy": 0.9}: defaults merged with overrides
    program.diagnostics # warnings

`--param` overrides are applied to the IR (each Param's `default` becomes this run's value) before
the passes, so range checks see the value that will run: `--param test_size=1.5` is an error.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from . import ir
from .errors import Diagnostic, SpecError
from .graph import PipelineGraph
from .partial import BUILT_IN_FULL, Unbuilt, without_echoes


@dataclass(frozen=True)
class Program:
    pipeline: ir.Pipeline
    graph: PipelineGraph
    params: dict[str, Any]
    diagnostics: tuple[Diagnostic, ...]
    source: str


def load_program(path: str, params: dict[str, str] | None = None) -> Program:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError([Diagnostic("E001", f"cannot read {path}: {reason}")]) from None
    return load_program_text(text, path, params)


def load_program_text(text: str, file: str = "<string>", params: dict[str, str] | None = None) -> Program:
    from .parser import build

    try:
        pipeline, unbuilt = build(text, file)
    except SpecError as exc:
        raise SpecError(sort_diagnostics(exc.diagnostics), source=text) from None
    if not pipeline.spec_hash:
        pipeline = pipeline.model_copy(update={"spec_hash": hashlib.sha256(text.encode()).hexdigest()})
    return compile_pipeline(pipeline, params, text, unbuilt)


def compile_pipeline(pipeline: ir.Pipeline, params: dict[str, str] | None = None, source: str = "",
                     unbuilt: Unbuilt = BUILT_IN_FULL) -> Program:
    """Validate and complete an already built IR (what `load_program_text` does after parsing).
    A pipeline built in part comes with what could not be built (`unbuilt`): its construction
    problems are reported with the passes' diagnostics, less those that only repeat them."""
    pipeline, diagnostics = validate(pipeline, params, unbuilt)
    if any(d.is_error for d in diagnostics):
        raise SpecError(diagnostics, source=source)
    return Program(pipeline=pipeline, graph=PipelineGraph(pipeline),
                   params={p.name: p.default for p in pipeline.params},
                   diagnostics=tuple(diagnostics), source=source)


def validate(pipeline: ir.Pipeline, params: dict[str, str] | None = None,
             unbuilt: Unbuilt = BUILT_IN_FULL) -> tuple[ir.Pipeline, list[Diagnostic]]:
    """The passes over a built pipeline: the completed IR and every diagnostic, sorted, raising
    nothing. `compile_pipeline` raises on its errors; the language server publishes them."""
    from .passes import run_passes

    pipeline, diagnostics = apply_overrides(pipeline, params or {})
    pipeline, found = run_passes(pipeline)
    return pipeline, sort_diagnostics([*unbuilt.problems, *without_echoes(diagnostics + found, pipeline, unbuilt)])


def sort_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """By position; command-line problems (no span) first. Stable, so passes keep their order."""
    return sorted(diagnostics, key=lambda d: (0, "", 0, 0) if d.span is None
                  else (1, d.span.file, d.span.line, d.span.col))


def apply_overrides(pipeline: ir.Pipeline, overrides: dict[str, str]) -> tuple[ir.Pipeline, list[Diagnostic]]:
    """Each `--param name=value` typed by its declaration and written into the param's default."""
    from .passes.common import unknown
    from .passes.params import value_fits

    declared = {p.name: p for p in pipeline.params}
    diagnostics, values = [], {}
    for name, text in overrides.items():
        param = declared.get(name)
        if param is None:
            diagnostics.append(unknown("E206", "param", name, declared, None, context="--param: "))
            continue
        value = parse_value(param.type, text)
        if value is None or not value_fits(param.type, value):
            where = f" (declared at {param.span})" if param.span else ""
            diagnostics.append(Diagnostic(
                "E302", f"--param {name}={text}: '{name}' is {param.type}{where}, {text!r} is not"))
            continue
        values[name] = value
    if not values:
        return pipeline, diagnostics
    params = tuple(p.model_copy(update={"default": values[p.name]}) if p.name in values else p
                   for p in pipeline.params)
    return pipeline.model_copy(update={"params": params}), diagnostics


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def parse_value(type_name: str, text: str) -> Any:
    """A command-line string as a value of a param type, or None if it is not one."""
    try:
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
    except ValueError:
        return None
    if type_name == "bool":
        return _BOOLS.get(text.strip().lower())
    return text
