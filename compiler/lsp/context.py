"""Where the cursor is, read from the text alone: the text being typed rarely parses.

    train species_model on penguins_split.train {
      estimator = sklearn.ensemble.RandomForestClassifier { n_est|        <- the cursor
    ->  frames: pipeline > step train species_model > estimator RandomForestClassifier
        statement: []   prefix: "n_est"

Only the braces still open at the cursor are read closely (a 1000-step spec is not tokenized to
complete in its last step): a block's kind comes from the tokens on the line of its `{` (headers
are one line, as `mlopsc fmt` writes them); the statement at the cursor is the tokens on its line
after the last brace, or since an unclosed `[` on an earlier line. Tokens come from the compiler's
lexer pattern.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..lexer import TOKEN
from ..options import BLOCK_OPTIONS, STEP_KINDS

_WORD = re.compile(r"[A-Za-z0-9_]*$")
# What decides the nesting: braces outside strings and comments, and a string left open.
_STRUCTURE = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"|#[^\n]*|[{}]|"')


@dataclass(frozen=True)
class Token:
    kind: str        # the lexer's group name: NAME, STRING, NUMBER, EQUAL, LBRACE, DOT ...
    text: str
    line: int
    start: int       # offset into the text


@dataclass(frozen=True)
class Frame:
    """A block the cursor is inside: the pipeline, a step, a nested block, an estimator, a tune."""

    kind: str                    # top | pipeline | step | params | types | block | estimator | tune | other
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
    opened, last_brace, in_string = _braces(text, start)
    frames = [Frame("top")]
    for brace in opened:
        line_start = text.rfind("\n", 0, brace) + 1
        header_start = max(line_start, text.rfind("{", line_start, brace) + 1, text.rfind("}", line_start, brace) + 1)
        frames.append(_frame(frames[-1], tokens_between(text, header_start, brace)))
    if in_string:
        return Context(frames, [], prefix, start, in_string=True)
    statement: list[Token] = []
    brackets = 0
    for tok in tokens_between(text, last_brace + 1, start):
        if statement and tok.line != statement[-1].line and brackets == 0:
            statement = []
        statement.append(tok)
        brackets = max(brackets + {"LSQB": 1, "RSQB": -1}.get(tok.kind, 0), 0)
    if statement and statement[-1].line != text.count("\n", 0, start) + 1 and brackets == 0:
        statement = []
    before = text[start - 1] if start > 0 else "\n"
    return Context(frames, statement, prefix, start, False, before in " \t\r\n" and bool(statement))


def _braces(text: str, end: int) -> tuple[list[int], int, bool]:
    """Offsets of the `{` still open at `end`, of the last brace before it (-1: none), and whether
    `end` is inside a string; braces in strings and comments do not count."""
    opened, last, pos = [], -1, 0
    while (found := _STRUCTURE.search(text, pos, end)) is not None:
        pos = found.end()
        if found.group() == '"':            # a string not closed on its line (yet)
            newline = text.find("\n", found.start(), end)
            if newline < 0:
                return opened, last, True
            pos = newline
        elif found.group() == "{":
            opened.append(found.start())
            last = found.start()
        elif found.group() == "}":
            if opened:
                opened.pop()
            last = found.start()
    return opened, last, False


def tokens_between(text: str, begin: int, end: int) -> list[Token]:
    """The tokens of text[begin:end] but blanks and comments (a string left open is skipped to the
    end of its line)."""
    tokens, pos, line = [], begin, text.count("\n", 0, begin) + 1
    while pos < end:
        found = TOKEN.match(text, pos, end)
        if found is None:
            newline = text.find("\n", pos, end) if text[pos] == '"' else pos + 1
            pos = end if newline < 0 else newline
            continue
        kind, value = found.lastgroup, found.group()
        if kind not in ("BLANK", "COMMENT"):
            tokens.append(Token(kind, value, line, pos))
        line += value.count("\n")
        pos = found.end()
    return tokens


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
        if words == ["types"]:
            return Frame("types", **inherited)
        if len(words) >= 2 and words[-2] == "tune":
            return Frame("tune", words[-1], **inherited)
        if len(words) == 1 and words[0] in BLOCK_OPTIONS:
            return Frame("block", words[0], **inherited)
        if len(words) >= 3 and words[0] == "estimator" and words[1] == "=":
            return Frame("estimator", "".join(words[2:]), **inherited)
    return Frame("other", **inherited)
