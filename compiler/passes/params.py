"""`params.NAME` must name a declared param whose type fits where it is used, and every default
must have its declared type.

    params { seed: int = 1.5 }                     # E302: param 'seed' is int, its default 1.5 is not
    split s from d { test_size = params.tst_size } # E206: unknown param 'tst_size'
"""
from __future__ import annotations

import types
import typing
from dataclasses import replace
from typing import Any

from .. import ir
from ..errors import Diagnostic
from .common import index, param_refs_of, unknown, where


def value_fits(type_name: str, value: Any) -> bool:
    """Whether a Python value has a param type; ints are floats too, bools are not ints."""
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def check_params(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics = []
    for param in pipeline.params:
        if param.default is not None and not value_fits(param.type, param.default):
            diagnostics.append(Diagnostic(
                "E302", f"param '{param.name}' is {param.type}, its default {param.default!r} is not",
                param.span, f"write {'an' if param.type == 'int' else 'a'} {param.type} value or change the type"))
    for step in pipeline.steps:
        for owner, fieldname, ref in param_refs_of(step):
            param = idx.params.get(ref.name)
            span = ref.span or step.span
            if param is None:
                diag = unknown("E206", "param", ref.name, idx.params, span, context=where(step))
                if diag.hint is None:
                    diag = replace(diag, hint=f"declare it: params {{ {ref.name}: float = ... }}")
                diagnostics.append(diag)
                continue
            expected = _expected_type(type(owner), fieldname)
            if expected is not None and not _compatible(expected, param.type):
                diagnostics.append(Diagnostic(
                    "E302", f"{where(step)}'{fieldname}' expects {expected}, but params.{param.name} is {param.type}",
                    span, f"declare '{param.name}: {expected}'" if expected != "a number" else None))
    return diagnostics


def _flatten(annotation: Any) -> set:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_flatten(arg) for arg in typing.get_args(annotation)))
    return {annotation}


def _expected_type(model: type[ir.Node], fieldname: str) -> str | None:
    """What a field holds, in words; None when any param type fits (estimator params, lists)."""
    kinds = _flatten(model.model_fields[fieldname].annotation)
    if float in kinds:
        return "a number"
    for py, word in ((bool, "bool"), (int, "int"), (str, "str")):
        if py in kinds:
            return word
    return None


def _compatible(expected: str, param_type: str) -> bool:
    return {"a number": param_type in ("int", "float")}.get(expected, expected == param_type)
