"""Spans from lark tokens: where a token or a run of parsed children starts and ends.

The transformer records these at parse time (they cannot be recovered later); lark's columns are
1-based and a span's end is exclusive, as in ir.Span.
"""
from __future__ import annotations

from typing import Any

from lark import Token

from . import ir


def token_span(file: str, tok: Token) -> ir.Span:
    end_line, end_col = token_end(tok)
    return ir.Span(file=file, line=tok.line, col=tok.column, end_line=end_line, end_col=end_col)


def cover_span(file: str, children: list) -> ir.Span:
    """The span from the start of the first child to the end of the last."""
    first, last = edge(children[0]), edge(children[-1])
    line, col = (first.line, first.column) if isinstance(first, Token) else (first.line, first.col)
    end_line, end_col = token_end(last) if isinstance(last, Token) else (last.end_line, last.end_col)
    return ir.Span(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


def edge(child: Any) -> Any:
    """What a child's span starts or ends with: a token, or the span of something built."""
    if isinstance(child, (Token, ir.Span)):
        return child
    if isinstance(child, tuple):        # a column modifier: (name, payload, span)
        return child[2]
    return child.span


def token_end(tok: Token) -> tuple[int, int]:
    """Where a token ends; lark leaves it unset on some tokens that error recovery re-feeds."""
    if tok.end_line is None:
        return tok.line, tok.column + len(tok)
    return tok.end_line, tok.end_column
