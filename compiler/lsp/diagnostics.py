"""The compiler's diagnostics as an editor receives them: the same code, position, message and
hint as `mlopsc check` prints, and related information for the places a diagnostic names:

    step 'penguins' is defined twice   hint: first defined at spec.mlops:11:3
        -> related: spec.mlops:11:3 "first defined here"
    unknown step 'pengiuns'            hint: did you mean 'penguins'?
        -> related: where step 'penguins' is defined
"""
from __future__ import annotations

import re

from lsprotocol import types

from .. import ir
from ..errors import Diagnostic
from .analysis import Analysis
from .ranges import Positions

SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}
# Codes whose did-you-mean names a step (E203) or a param (E206) of this spec.
SUGGESTS = {"E203": "step", "E206": "param"}
_SUGGESTION = re.compile(r"did you mean '(\w+)'")


def to_lsp(analysis: Analysis, uri: str, positions: Positions) -> list[types.Diagnostic]:
    return [_one(diag, analysis, uri, positions) for diag in analysis.diagnostics]


def _one(diag: Diagnostic, analysis: Analysis, uri: str, positions: Positions) -> types.Diagnostic:
    message = diag.message + (f"\nhint: {diag.hint}" if diag.hint else "")
    related = _positions_named(diag, analysis, uri, positions) + _suggested(diag, analysis, uri, positions)
    return types.Diagnostic(range=positions.range(diag.span), message=message, severity=SEVERITY[diag.severity],
                            code=diag.code, source="mlopsc", related_information=related or None)


def _positions_named(diag: Diagnostic, analysis: Analysis, uri: str, positions: Positions) -> list:
    """`(defined at FILE:12:3)`, `first defined at FILE:12:3`, `(declared at FILE:4:5)`: the name of
    the step or param that starts there, else the one character."""
    found = []
    pattern = re.compile(r"(\w+(?: \w+)?) at " + re.escape(analysis.file) + r":(\d+):(\d+)")
    symbols = analysis.symbols if analysis.current else None
    for text in (diag.message, diag.hint or ""):
        for match in pattern.finditer(text):
            line, col = int(match.group(2)), int(match.group(3))
            span = (symbols and symbols.defined_at(line, col)) \
                or ir.Span(file=analysis.file, line=line, col=col, end_line=line, end_col=col)
            found.append(types.DiagnosticRelatedInformation(
                location=types.Location(uri=uri, range=positions.range(span)), message=f"{match.group(1)} here"))
    return found


def _suggested(diag: Diagnostic, analysis: Analysis, uri: str, positions: Positions) -> list:
    what = SUGGESTS.get(diag.code)
    match = _SUGGESTION.search(diag.hint or "")
    if what is None or match is None or analysis.symbols is None or not analysis.current:
        return []
    name = match.group(1)
    span = analysis.symbols.definition(what, name)
    if span is None:
        return []
    return [types.DiagnosticRelatedInformation(location=types.Location(uri=uri, range=positions.range(span)),
                                               message=f"{what} '{name}' is defined here")]
