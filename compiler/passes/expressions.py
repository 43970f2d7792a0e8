"""Every `filter` and `expect` is checked against the function table, the columns where they are
known, the declared column types and the params (expression.check does the judging).

    source cars { csv = "cars.csv"  filter = "Cylindres > 4" }        # E207: unknown column 'Cylindres' ...
    check q on cars { expect "lower(Horsepower) == 'x'" }            # E309: lower() needs a string ...

A filter runs on the rows as read, so its columns are the file's: for a CSV beside the spec, its
header line (read with the csv module: `mlopsc check` stays free of pandas). An `expect` sees the
checked dataset: the columns its source declares (`columns = [...]`), else the header again.
"""
from __future__ import annotations

import csv
import os

from .. import ir
from ..errors import Diagnostic
from ..expression import check
from ..expression_functions import COLUMN_TYPES
from .columns import columns_of, is_known
from .common import index, source_of, where

PARAM_TYPES = {"int": "number", "float": "number", "str": "string", "bool": "bool"}


def check_expressions(pipeline: ir.Pipeline) -> list[Diagnostic]:
    # Imported here: the passes' package is also imported by runtime-only code (params parsing),
    # where lark is not installed; a pipeline to check was parsed with it.
    from ..expression_parser import diagnostic

    idx = index(pipeline)
    params = {p.name: PARAM_TYPES[p.type] for p in pipeline.params}
    spec_dir = os.path.dirname(pipeline.source_file)
    diagnostics: list[Diagnostic] = []

    def judge(step: ir.Step, expression: ir.Expression, columns, source: ir.Source | None) -> None:
        types = {c: COLUMN_TYPES[t] for c, t in (source.types if source else {}).items()}
        for problem in check(expression.tree, columns, types, params):
            diagnostics.append(diagnostic(problem, expression.text, expression.span, where(step)))

    for step in pipeline.steps:
        if isinstance(step, ir.Source) and step.filter is not None:
            judge(step, step.filter, header_of(step, spec_dir), step)
        elif isinstance(step, ir.Check):
            source = source_of(idx, step.data)
            columns = columns_of(idx, step.data)
            if columns is None and source is not None:
                columns = header_of(source, spec_dir)
            elif columns is not None:
                columns = _Known(columns)
            for rule in step.rules:
                if isinstance(rule, ir.ExpressionRule):
                    judge(step, rule.expression, columns, source)
    return diagnostics


class _Known(tuple):
    """Column names, some of them patterns (a served source's `proba_*`): `in` matches those too."""

    def __contains__(self, column: object) -> bool:
        return isinstance(column, str) and is_known(column, tuple(self))


def header_of(source: ir.Source, spec_dir: str) -> tuple[str, ...] | None:
    """The header of a CSV source's file, when it can be read here; None (unknown) otherwise."""
    if source.format != "csv" or not source.path or "://" in source.path:
        return None
    path = os.path.join(spec_dir, source.path)
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            return tuple(next(csv.reader(fh), ()))
    except OSError:
        return None
