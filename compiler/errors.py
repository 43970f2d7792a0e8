"""One error family for everything a user can get wrong in a spec.

A Diagnostic has a code, a severity, a message, a span and an optional hint. Passes return
lists of them; the driver collects all of a run and raises SpecError once (sqlglot's
ErrorLevel.RAISE). Rendering as `file:line:col: error[E104]: message` + source line + caret lives
in `render`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .ir import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    code: str                 # E1xx syntax, E2xx names/references, E3xx types/values, W... warnings
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass
class SpecError(Exception):
    """Raised once per run with every diagnostic collected (errors and warnings)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str | None = None      # the spec text, so rendering need not read the file again

    def __str__(self) -> str:
        return "\n".join(render(d, self.source) for d in self.diagnostics)


def render(diag: Diagnostic, source: str | None = None) -> str:
    """`file:line:col: error[CODE]: message`, the source line, a caret under the span, the hint."""
    where = f"{diag.span}: " if diag.span else ""
    out = [f"{where}{diag.severity}[{diag.code}]: {diag.message}"]
    if diag.span is not None:
        text = source
        if text is None:
            try:
                with open(diag.span.file, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                text = None
        lines = text.splitlines() if text is not None else []
        if 0 < diag.span.line <= len(lines):
            line = lines[diag.span.line - 1]
            width = 1
            if diag.span.end_line == diag.span.line and diag.span.end_col > diag.span.col:
                width = diag.span.end_col - diag.span.col
            gutter = f"{diag.span.line:>4} | "
            # Tabs become one space each, so the caret stays under column `col` in any terminal.
            out.append(gutter + line.replace("\t", " "))
            out.append(" " * (len(gutter) + diag.span.col - 1) + "^" * max(1, width))
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)
