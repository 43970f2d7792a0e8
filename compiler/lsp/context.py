"""Where the cursor is, read from the text alone: the text being typed rarely parses.

    train species_model on penguins_split.train {
      estimator = sklearn.ensemble.RandomForestClassifier { n_est|        <- the cursor
    ->  frames: pipeline > step train species_model > estimator RandomForestClassifier
        statement: []   prefix: "n_est"

Tokens come from the compiler's lexer pattern; a block's kind comes from the tokens on the line
of its `{` (headers are one line, as `mlopsc fmt` writes them); the statement at the cursor is the
tokens on its line after the last brace, or since an unclosed `[` on an earlier line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..lexer import TOKEN
from ..options import BLOCK_OPTIONS, STEP_KINDS

BLOCKS = (*BLOCK_OPTIONS, "types")
_WORD = re.compile(r"[A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Token:
    kind: str        # the lexer's group name: NAME, STRING, NUMBER, EQUAL, LBRACE, DOT ...
    text: str
    line: int
    start: int       # offset into the text


@dataclass(frozen=True)
class Frame:
    """A block the cursor is inside: the pipeline, a step, a nested block, an estimator, a tune."""

    kind: str                    # top | pipeline | step | params | block | estimator | tune | other
    name: str = ""               # the step's kind, the block's key, the estimator's dotted name
    step: str | None = None      # the step it is in
    step_kind: str | None = None
    link: str | None = None      # a step's `on X` / `from X`, as written


@dataclass
class Context:
    frames: list[Frame]
    statement: list[Token]       # tokens of the statement at the cursor, before the word being typed
    prefix: str                  # the word being typed, up to the cursor
    prefix_start: int            # its offset
    in_string: bool = False
    after_blank: bool = field(default=False)   # a blank separates the cursor from the statement

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    def texts(self) -> list[str]:
        return [t.text for t in self.statement]


def context_at(text: str, offset: int) -> Context:
    prefix = _WORD.search(text, text.rfind("\n", 0, offset) + 1, offset).group()
    start = offset - len(prefix)
    tokens, in_string = tokens_before(text, start)
    frames = [Frame("top")]
    statement: list[Token] = []
    brackets = 0
    for i, tok in enumerate(tokens):
        if statement and tok.line != statement[-1].line and brackets == 0:
            statement = []
        if tok.kind == "LBRACE":
            frames.append(_frame(frames[-1], statement))
            statement, brackets = [], 0
        elif tok.kind == "RBRACE":
            if len(frames) > 1:
                frames.pop()
            statement, brackets = [], 0
        else:
            statement.append(tok)
            brackets += {"LSQB": 1, "RSQB": -1}.get(tok.kind, 0)
            brackets = max(brackets, 0)
    last_line = text.count("\n", 0, start) + 1
    if statement and statement[-1].line != last_line and brackets == 0:
        statement = []
    before = text[start - 1] if start > 0 else "\n"
    return Context(frames, statement, prefix, start, in_string, before in " \t\r\n" and bool(statement))


def tokens_before(text: str, end: int) -> tuple[list[Token], bool]:
    """The tokens of text[:end] but blanks and comments, and whether `end` is inside a string."""
    tokens, pos, line = [], 0, 1
    while pos < end:
        found = TOKEN.match(text, pos, end)
        if found is None:
            if text[pos] != '"':
                pos += 1
                continue
            newline = text.find("\n", pos, end)
            if newline < 0:             # an unclosed string runs to the cursor
                return tokens, True
            pos = newline
            continue
        kind, value = found.lastgroup, found.group()
        if kind not in ("BLANK", "COMMENT"):
            tokens.append(Token(kind, value, line, pos))
        line += value.count("\n")
        pos = found.end()
    return tokens, False


def _frame(parent: Frame, header: list[Token]) -> Frame:
    words = [t.text for t in header]
    inherited = {"step": parent.step, "step_kind": parent.step_kind}
    if parent.kind == "top" and words[:1] == ["pipeline"]:
        return Frame("pipeline")
    if parent.kind == "pipeline":
        if len(words) >= 2 and words[0] in STEP_KINDS:
            link = "".join(words[3:]) if len(words) > 3 and words[2] in ("on", "from") else None
            return Frame("step", words[0], words[1], words[0], link)
        if words == ["params"]:
            return Frame("params")
    if parent.kind == "step":
        if len(words) >= 2 and words[-2] == "tune":
            return Frame("tune", words[-1], **inherited)
        if words[-1:] and words[-1] in BLOCKS and len(words) == 1:
            return Frame("block", words[0], **inherited)
        if len(words) >= 3 and words[0] == "estimator" and words[1] == "=":
            return Frame("estimator", "".join(words[2:]), **inherited)
    return Frame("other", **inherited)
