"""Spans (1-based lines and code-point columns, end exclusive, as lark counts them) to LSP ranges
(0-based lines, columns in the client's code units: UTF-16 unless it asked for another), and back.

Lines are split on "\\n" only, as lark counts them; a `\\r` before it is part of the line's blanks.
"""
from __future__ import annotations

from bisect import bisect_right
from functools import cached_property

from lsprotocol import types
from pygls.workspace.position_codec import UnitCounter, Utf16

from .. import ir


class Positions:
    """Conversions for one version of a document's text."""

    def __init__(self, text: str, units: UnitCounter | None = None):
        self.lines = text.split("\n")
        self.units = units or Utf16()

    def position(self, line: int, col: int) -> types.Position:
        """A 1-based line and code-point column -> an LSP position."""
        row = min(max(line - 1, 0), len(self.lines) - 1)
        text = self.lines[row]
        return types.Position(line=row, character=self.units.column_from_utf32(text, max(col - 1, 0)))

    def range(self, span: ir.Span | None) -> types.Range:
        """The span's range; a span of no width gets one character, as the caret of `mlopsc check`
        does; no span is the start of the file."""
        if span is None:
            return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        end_line, end_col = span.end_line, span.end_col
        if (end_line, end_col) <= (span.line, span.col):
            end_line, end_col = span.line, span.col + 1
        return types.Range(start=self.position(span.line, span.col), end=self.position(end_line, end_col))

    def point(self, position: types.Position) -> tuple[int, int]:
        """An LSP position -> (1-based line, 1-based code-point column)."""
        row = min(position.line, len(self.lines) - 1)
        text, units, col = self.lines[row], 0, 0
        for char in text:
            if units >= position.character:
                break
            units += self.units.code_units_for_char(char)
            col += 1
        return row + 1, col + 1

    @cached_property
    def line_starts(self) -> list[int]:
        starts, offset = [], 0
        for row in self.lines:
            starts.append(offset)
            offset += len(row) + 1
        return starts

    def offset(self, line: int, col: int) -> int:
        """The index into the text of a 1-based line and column."""
        return self.line_starts[line - 1] + col - 1

    def at(self, offset: int) -> types.Position:
        """The LSP position of an index into the text."""
        row = bisect_right(self.line_starts, offset) - 1
        return self.position(row + 1, offset - self.line_starts[row] + 1)


def inside(line: int, col: int, span: ir.Span | None) -> bool:
    """(line, col) lies in the span, its end included (a cursor right after a name is on it)."""
    return span is not None and (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)
