"""Spec text -> ir.Pipeline, or a SpecError with every syntax error put in words.

lark's LALR parser (grammar.lark, tokens from lexer.py) is built once per process, from lark's
cache file, and reused. `parse` runs transformer.py's methods as the parser reduces, so no parse
tree is built; `build` does the same but keeps a pipeline with construction errors, built from what
is valid, for the driver to validate (partial.py); `parse_tree` builds the tree with positions that
fmt needs.

Syntax errors are recovered from where possible (a missing `=`, `,`, `)`, `]`, `}` or `{` is inserted,
an unterminated string is closed at the end of its line, an unexpected token is dropped), so one
run reports every independent mistake; an error on the line of the previous one, or right after
it, is its echo and is not reported.
"""
from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ir
from .errors import Diagnostic, SpecError
from .partial import Unbuilt

if TYPE_CHECKING:
    from lark import Lark, Tree

    from .transformer import SpecTransformer

GRAMMAR = Path(__file__).with_name("grammar.lark")
MAX_SYNTAX_ERRORS = 10
# Recovery attempts, echoes included: binary junk must not cost a recovery per byte.
MAX_RECOVERIES = 200

# What a user reads for each terminal of the grammar (never `__ANON_0`, `RBRACE` or `NAME`).
TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "SIGN": "'-'",
    "OP": "a comparison (>=, >, <=, <, ==)", "LINK": "'on' or 'from'", "ARROW": "'->'",
    "$END": "the end of the file", "<END-OF-FILE>": "the end of the file",
}
STEP_ITEM_KEYWORDS = {"ROWS", "COLUMN", "EXPECT", "REQUIRE", "DRIFT", "METRIC", "LATENCY", "TUNE"}
NAME_KEYWORDS = {"METRIC", "LATENCY"}     # keywords that may also start an option
VALUE_START = {"STRING", "NUMBER", "NAME", "LSQB"}
# Tokens a recovering parser may insert where one was forgotten, tried in this order.
# A missing `,` is likelier than a missing `]` (and a `]` inserted in `[a b]` would let `b` start
# an option, hiding the mistake).
INSERTABLE = {"EQUAL": "=", "COMMA": ",", "RPAR": ")", "RSQB": "]", "RBRACE": "}", "LBRACE": "{"}


@lru_cache(maxsize=1)
def grammar_parser() -> Lark:
    """The parser that builds trees with positions (fmt works on them)."""
    from lark import Lark

    from .lexer import SpecLexer

    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer=SpecLexer, propagate_positions=True,
                maybe_placeholders=False, cache=True)


@lru_cache(maxsize=1)
def _building_parser() -> tuple[Lark, SpecTransformer]:
    """The parser that builds IR as it reduces, with one transformer reset for each spec."""
    from lark import Lark

    from .lexer import SpecLexer
    from .transformer import SpecTransformer

    builder = SpecTransformer()
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer=SpecLexer, maybe_placeholders=False,
                transformer=builder, cache=True), builder


_BUILDING = threading.Lock()     # the one transformer holds one spec's state at a time


def parse(text: str, file: str = "<string>") -> ir.Pipeline:
    """Parse one spec. Raises SpecError with every syntax and construction error found."""
    pipeline, unbuilt = build(text, file)
    if unbuilt.problems:
        raise SpecError(list(unbuilt.problems))
    return pipeline


def build(text: str, file: str = "<string>") -> tuple[ir.Pipeline, Unbuilt]:
    """Parse one spec and build its pipeline from what is valid, with what could not be built.
    Raises SpecError on syntax errors (E1xx, lark's or the transformer's: what the spec says is
    unclear, so nothing is checked further) and when not even the pipeline could be built."""
    parser, builder = _building_parser()
    with _BUILDING:
        builder.reset(file, hashlib.sha256(text.encode("utf-8")).hexdigest())
        try:
            pipeline = _parse_with_recovery(parser, text, file)
        except RecursionError:
            raise SpecError([Diagnostic("E107", "the spec nests lists too deeply", _span(file, 1, 1))]) from None
        problems = sorted(builder.problems, key=_position)
        unbuilt = Unbuilt(tuple(problems), frozenset(builder.unbuilt_steps), frozenset(builder.unbuilt_params))
    if pipeline is None or any(p.code.startswith("E1") for p in problems):
        raise SpecError(problems)
    return pipeline, unbuilt


def parse_tree(text: str, file: str = "<string>") -> Tree:
    """The lark tree of a spec, with positions; raises SpecError on syntax errors."""
    return _parse_with_recovery(grammar_parser(), text, file)


def _parse_with_recovery(parser: Lark, text: str, file: str) -> Any:
    from lark.exceptions import UnexpectedInput

    recovery = _Recovery(text, file)
    result = None
    try:
        result = parser.parse(text, on_error=recovery)
    except UnexpectedInput as exc:        # an error recovery gave up on (the end of the file)
        recovery.report(exc)
    if recovery.diagnostics:
        raise SpecError(recovery.diagnostics)
    return result


def _position(diag: Diagnostic) -> tuple[int, int]:
    return (diag.span.line, diag.span.col) if diag.span else (0, 0)


def _span(file: str, line: int, col: int, end_line: int | None = None, end_col: int | None = None) -> ir.Span:
    return ir.Span(file=file, line=line, col=col, end_line=end_line or line, end_col=end_col or col + 1)


class _Recovery:
    """lark's `on_error` callback: records the error in words, then repairs or skips."""

    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        self.diagnostics: list[Diagnostic] = []
        self.last_line = 0
        self.last_end = 0           # offset just past the last error's token, reported or not
        self.recoveries = 0

    def __call__(self, exc: Any) -> bool:
        from lark.exceptions import UnexpectedCharacters, UnexpectedToken

        self.report(exc)
        self.recoveries += 1
        if len(self.diagnostics) >= MAX_SYNTAX_ERRORS or self.recoveries >= MAX_RECOVERIES:
            return False
        if isinstance(exc, UnexpectedCharacters):
            if self.text[exc.pos_in_stream] == '"':
                self.skip_unterminated_string(exc)
            return True
        if not isinstance(exc, UnexpectedToken) or exc.token.type == "$END":
            return False
        return self.repair(exc)

    def skip_unterminated_string(self, exc: Any) -> None:
        """Skip to the end of the line and go on as if the string had been closed there."""
        from lark import Token

        state = exc.interactive_parser.lexer_thread.state
        end = self.text.find("\n", exc.pos_in_stream)
        rest = self.text[exc.pos_in_stream:end if end >= 0 else len(self.text)]
        if "STRING" in exc.interactive_parser.accepts():
            exc.interactive_parser.feed_token(Token("STRING", '""', exc.pos_in_stream, exc.line, exc.column,
                                                    exc.line, exc.column + len(rest), exc.pos_in_stream + len(rest)))
        state.line_ctr.feed(rest)

    def repair(self, exc: Any) -> bool:
        """Insert a forgotten `=` / `}` / `]` / `)` / `,` if that lets the parse go on, else drop the token."""
        from lark import Token
        from lark.exceptions import UnexpectedInput

        parser = exc.interactive_parser
        # The token lark reports may lack its end (it comes from the lexer's fallback): add it.
        tok = exc.token
        end_column = tok.end_column or tok.column + len(tok)
        found = Token(tok.type, tok.value, tok.start_pos, tok.line, tok.column, tok.end_line or tok.line,
                      end_column, tok.end_pos or tok.start_pos + len(tok))
        for name, text in INSERTABLE.items():
            if name not in exc.expected:
                continue
            trial = parser.copy()
            missing = Token(name, text, found.start_pos, found.line, found.column, found.line, found.column,
                            found.start_pos)
            try:
                trial.feed_token(missing)
                trial.feed_token(found)
            except UnexpectedInput:
                continue
            parser.feed_token(missing)
            parser.feed_token(found)
            return True
        return True

    def report(self, exc: Any) -> None:
        from lark.exceptions import UnexpectedCharacters, UnexpectedToken

        if isinstance(exc, UnexpectedCharacters):
            diag = self.bad_character(exc)
        elif isinstance(exc, UnexpectedToken):
            diag = self.unexpected_token(exc)
        else:
            diag = Diagnostic("E101", "syntax error", _span(self.file, exc.line, exc.column))
        start = getattr(getattr(exc, "token", None), "start_pos", None)
        start = exc.pos_in_stream if start is None else start
        # An error on the line of the last one, or with nothing but blanks between its token and
        # the last error's, is an echo of it (the parser has not found its feet again).
        adjacent = self.text[self.last_end:start].strip() == "" if start is not None else True
        end = getattr(getattr(exc, "token", None), "end_pos", None)
        self.last_end = max(self.last_end, end if end is not None else (start or 0) + 1)
        if self.diagnostics and (diag.span.line == self.last_line or adjacent or exc_is_end(exc)):
            return
        self.last_line = diag.span.line
        self.diagnostics.append(diag)

    def bad_character(self, exc: Any) -> Diagnostic:
        char = self.text[exc.pos_in_stream]
        if char == '"':
            end = self.text.find("\n", exc.pos_in_stream)
            width = (end if end >= 0 else len(self.text)) - exc.pos_in_stream
            return Diagnostic("E102", "unterminated string", _span(self.file, exc.line, exc.column,
                                                                     exc.line, exc.column + max(1, width)),
                              'close it with " on the same line (write \\n for a line break)')
        hint = "strings are written in double quotes" if char == "'" else None
        shown = repr(char)[1:-1] if not char.isprintable() or char == "'" else char
        return Diagnostic("E103", f"unexpected character '{shown}'", _span(self.file, exc.line, exc.column), hint)

    def unexpected_token(self, exc: Any) -> Diagnostic:
        tok = exc.token
        # lark's `expected` is the lookahead set of an LALR state before its reductions, which
        # merges contexts (a string in a list or in a step); what the parser accepts is exact.
        expected = set(exc.interactive_parser.accepts()) or set(exc.expected)
        found = describe_token(tok)
        message = f"expected {expected_words(expected)}, found {found}"
        hint = None
        previous = _previous_token(exc)
        if tok.type == "$END":
            words = "'}'" if "RBRACE" in expected else expected_words(expected)
            message = f"expected {words} before the end of the file"
            hint = _unclosed_brace_hint(self.text) if "RBRACE" in expected else None
            line, col = _end_position(self.text)
            return Diagnostic("E101", message, _span(self.file, line, col), hint)
        if expected == {"EQUAL", "LBRACE"} and previous is not None:
            from .options import STEP_KINDS

            if str(previous) in STEP_KINDS:
                hint = f"is a '}}' missing before this line? '{previous}' starts a new step here"
            else:
                hint = f"options are written `{previous} = value`"
        elif tok.type == "LPAR" and "LBRACE" in expected:
            hint = "estimator parameters are written `Name { key = value }`"
        elif tok.type == "COMMA" and "RBRACE" in expected:
            hint = "options are separated by spaces or new lines, not commas"
        elif tok.type == "OP" and "RBRACE" in expected:
            hint = 'expressions are strings: write them in double quotes, e.g. filter = "year < 2009"'
        elif tok.type == "RBRACE" and expected <= {"$END", "<END-OF-FILE>"}:
            hint = "this '}' closes nothing: is it one too many?"
        elif "RBRACE" in expected and tok.type in ("EQUAL", "COLON"):
            hint = "an option name must be a single word"
        elif expected == {"PIPELINE"}:
            hint = "a spec is one `pipeline NAME { ... }`"
        elif expected in ({"$END"}, {"<END-OF-FILE>"}):
            hint = "everything belongs inside `pipeline NAME { ... }`"
        span = _span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)
        return Diagnostic("E101", message, span, hint)


def exc_is_end(exc: Any) -> bool:
    return getattr(getattr(exc, "token", None), "type", None) == "$END"


def _previous_token(exc: Any) -> Any:
    from lark import Token

    stack = exc.interactive_parser.parser_state.value_stack
    return stack[-1] if stack and isinstance(stack[-1], Token) else None


def describe_token(tok: Any) -> str:
    if tok.type == "STRING":
        return "a string"
    if tok.type == "$END":
        return "the end of the file"
    return f"'{tok}'"


def expected_words(expected: set[str]) -> str:
    """{'RBRACE', 'NAME', 'ROWS', ...} -> "'}' or a step option"."""
    expected = set(expected)
    words = []
    if "RBRACE" in expected:
        words.append("'}'")
        expected.discard("RBRACE")
    if STEP_ITEM_KEYWORDS <= expected and "NAME" in expected:
        words.append("a step option")
        expected -= STEP_ITEM_KEYWORDS | {"NAME"}
    if "NAME" in expected:      # where an option may start, `metric` and `latency` are names too
        expected -= NAME_KEYWORDS
    if "ALLOW" in expected and "NAME" in expected:
        words.append("a step or a pipeline option")
        expected -= {"ALLOW", "NAME"}
    elif VALUE_START <= expected:
        words.append("a value")
        expected -= VALUE_START | {"SIGN"}
    elif expected == {"NAME"} and words:     # inside a nested block
        words.append("an option")
        expected.discard("NAME")
    words += sorted(_terminal_word(name) for name in expected)
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _terminal_word(name: str) -> str:
    if name in TERMINAL_WORDS:
        return TERMINAL_WORDS[name]
    for terminal in grammar_parser().terminals:
        if terminal.name == name and terminal.pattern.type == "str":
            return f"'{terminal.pattern.value}'"
    return name.lower()


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return len(lines), len(lines[-1]) + 1


def _unclosed_brace_hint(text: str) -> str:
    """Point at the `{` whose block is most likely unclosed: the first one whose `}` sits at a
    different indentation than the line that opened it (the `}` it got was meant for its parent)."""
    stack: list[tuple[int, int]] = []
    in_string = in_comment = escaped = False
    line = 1
    lines = text.split("\n")
    indent = [len(row) - len(row.lstrip()) for row in lines]
    for char in text:
        if char == "\n":
            line, in_comment, in_string = line + 1, False, False
        elif in_comment:
            continue
        elif in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char == "#":
            in_comment = True
        elif char == "{":
            stack.append((line, indent[line - 1]))
        elif char == "}" and stack:
            opened, opened_indent = stack.pop()
            if indent[line - 1] != opened_indent and lines[line - 1].strip().startswith("}"):
                return f"the '{{' on line {opened} is never closed"
    return f"the '{{' on line {stack[-1][0]} is never closed" if stack else "a '{' is never closed"
