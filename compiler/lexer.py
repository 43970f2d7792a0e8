"""The tokens of the language, from one regular expression.

lark's contextual lexer matches each token against the terminals of the current parser state; on
a 1000-step spec that was 40% of the parse. This lexer matches one alternation, then does the one
thing that needed the parser state: a keyword (`on`, `rows`, `column` ...) is a keyword only where
the grammar can take it, and a name everywhere else (`column rows: int`, `stratify = unique`).

It keeps lark's contract so that error recovery works unchanged: positions come from and go to
`lexer_state.line_ctr`, and a character no token starts with raises UnexpectedCharacters.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedCharacters
from lark.lexer import Lexer, LexerState

# Terminal names as lark names them in grammar.lark (named there, or lark's names for literals).
# Order matters where two match at one place: `->` before `-`, `>=` before `>`.
TOKEN = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in (
    ("BLANK", r"[ \t\f\r\n\ufeff]+"),     # \ufeff: the byte-order mark some editors write
    ("COMMENT", r"#[^\n]*"),
    ("STRING", r'"(?:[^"\\\n]|\\[^\n])*"'),
    ("NAME", r"[A-Za-z_][A-Za-z0-9_]*"),
    ("NUMBER", r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"),
    ("ARROW", r"->"),
    ("OP", r">=|<=|==|!=|>|<"),
    ("SIGN", r"[-+]"),
    ("LBRACE", r"\{"), ("RBRACE", r"\}"), ("LSQB", r"\["), ("RSQB", r"\]"), ("LPAR", r"\("), ("RPAR", r"\)"),
    ("EQUAL", r"="), ("COLON", r":"), ("COMMA", r","), ("DOT", r"\."),
)))
KEYWORDS = {
    "pipeline": "PIPELINE", "allow": "ALLOW", "on": "LINK", "from": "LINK", "rows": "ROWS", "expect": "EXPECT",
    "column": "COLUMN", "in": "IN", "between": "BETWEEN", "and": "AND", "nulls": "NULLS",
    "nullable": "NULLABLE", "not": "NOT", "unique": "UNIQUE", "matches": "MATCHES", "require": "REQUIRE",
    "drift": "DRIFT", "metric": "METRIC", "latency": "LATENCY", "tune": "TUNE",
}
TERMINALS = {name for name in TOKEN.groupindex if name not in ("BLANK", "COMMENT")} | set(KEYWORDS.values())


class SpecLexer(Lexer):
    __future_interface__ = 2        # lark: lex(lexer_state, parser_state), text as a TextSlice

    def __init__(self, lexer_conf: Any):
        pass

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        text, end = lexer_state.text.text, lexer_state.text.end
        line_ctr = lexer_state.line_ctr
        states = parser_state.parse_conf.parse_table.states
        match = TOKEN.match
        while line_ctr.char_pos < end:
            pos = line_ctr.char_pos
            found = match(text, pos, end)
            if found is None:
                raise UnexpectedCharacters(text, pos, line_ctr.line, line_ctr.column, state=parser_state,
                                           token_history=lexer_state.last_token and [lexer_state.last_token])
            kind, value = found.lastgroup, found.group()
            if kind == "BLANK" or kind == "COMMENT":
                line_ctr.feed(value, kind == "BLANK")
                continue
            if kind == "NAME" and value in KEYWORDS and KEYWORDS[value] in states[parser_state.position]:
                kind = KEYWORDS[value]
            # No token but blanks holds a newline: move along the line (LineCounter.feed, inlined).
            line_ctr.char_pos = found.end()
            line_ctr.column = line_ctr.char_pos - line_ctr.line_start_pos + 1
            token = Token(kind, value, pos, line_ctr.line, pos - line_ctr.line_start_pos + 1,
                          line_ctr.line, line_ctr.column, line_ctr.char_pos)
            lexer_state.last_token = token
            yield token
