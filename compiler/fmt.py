"""`mlopsc fmt`: the canonical layout of a spec, printed from its parse tree.

Layout: two-space indents, one statement per line, `key = value` with single spaces, lists as
`[a, b]`, steps always open over several lines, small blocks (`resources { cpu = 2  memory = "4Gi" }`,
an estimator's parameters, a tune space) on one line when it fits in LINE_WIDTH, one blank line
around each step, blank lines inside a block kept (at most one).

Comments are kept: a comment on its own line stays before the statement that follows it; a
comment at the end of a line stays at the end of that statement's line; a comment inside a
construct printed on one line (a list written over several lines) moves above the statement.
Printing never changes what the spec means: tests check `parse(fmt(x)) == parse(x)` and
`fmt(fmt(x)) == fmt(x)` for every example.
"""
from __future__ import annotations

import re

from lark import Token, Tree

from .errors import Diagnostic, SpecError
from .ir import Span
from .options import TUNE_KEYS
from .parser import parse_tree

LINE_WIDTH = 100
INDENT = "  "
# Blocks that read as a list of declarations: always one entry per line.
MULTILINE_BLOCKS = ("params", "types", "preprocessing")
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')

Position = tuple[int, int]
_END: Position = (10**9, 0)


def format_spec(text: str, file: str = "<string>") -> str:
    """The canonical layout of `text`. Raises SpecError if it does not parse."""
    tree = parse_tree(text, file)
    printer = _Printer(_comments(text))
    try:
        printer.pipeline(tree)
    except RecursionError:
        raise SpecError([Diagnostic("E107", "the spec nests lists too deeply",
                                    Span(file=file, line=1, col=1, end_line=1, end_col=2))]) from None
    return "\n".join(printer.out).rstrip("\n") + "\n"


def _comments(text: str) -> list[tuple[Position, str]]:
    found = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    line = 0
    for match in _STRING_OR_COMMENT.finditer(text):
        if match.group().startswith("#"):
            while line + 1 < len(line_starts) and line_starts[line + 1] <= match.start():
                line += 1
            found.append(((line + 1, match.start() - line_starts[line] + 1), match.group().rstrip()))
    return found


def start(node: Tree | Token) -> Position:
    if isinstance(node, Token):
        return (node.line, node.column)
    return (node.meta.line, node.meta.column)


def end(node: Tree | Token) -> Position:
    if isinstance(node, Token):
        return (node.end_line, node.end_column)
    return (node.meta.end_line, node.meta.end_column)


# The grammar keeps the tokens that close a node (for spans); the layout prints its own.
_CLOSING = ("RBRACE", "LSQB", "RSQB", "RPAR")


def kids(node: Tree) -> list:
    return [c for c in node.children if not (isinstance(c, Token) and c.type in _CLOSING)]


def closing_brace(node: Tree) -> Position:
    return (node.meta.end_line, node.meta.end_column - 1)


# ---------------------------------------------------------------- one-line forms


def flat(node: Tree | Token) -> str:
    """A node printed on one line."""
    if isinstance(node, Token):
        return str(node)
    kind, parts = node.data, kids(node)
    if kind in ("string", "number", "dotted"):
        return ("." if kind == "dotted" else "").join(str(p) for p in parts)
    if kind == "list":
        return "[" + ", ".join(flat(p) for p in parts) + "]"
    if kind == "call":
        return f"{parts[0]}(" + ", ".join(flat(p) for p in parts[1:]) + ")"
    if kind == "constructor":
        return flat(parts[0]) + " " + braces(parts[1:])
    if kind == "option":
        return f"{parts[0]} = {flat(parts[1])}"
    if kind == "block":
        return f"{parts[0]} " + braces(parts[1:])
    if kind == "typed_entry":
        text = f"{parts[0]}: {parts[1]}"
        for part in parts[2:]:
            text += f" {part}" if isinstance(part, Token) else f" = {flat(part)}"
        return text
    if kind == "tune":
        return f"tune {parts[1]} " + braces(parts[2:])
    return rule_line(kind, parts)


def braces(entries: list) -> str:
    return "{ " + "  ".join(flat(e) for e in entries) + " }" if entries else "{}"


def rule_line(kind: str, parts: list) -> str:
    """Statements with their own shape: check, gate and drift rules, `allow`."""
    if kind == "column_rule":
        head = f"column {parts[1]}"
        mods = parts[2:]
        if mods and isinstance(mods[0], Token):
            head += f": {mods[0]}"
            mods = mods[1:]
        return " ".join([head] + ([", ".join(flat_modifier(m) for m in mods)] if mods else []))
    if kind == "require_rule":
        metric, rest = str(parts[1]), parts[2:]
        if rest[0].type == "NAME":
            metric += f"({rest.pop(0)})"
        text = f"require {metric} {rest[0]} {flat(rest[1])}"
        return text + (f" {rest[2]} {rest[3]}" if len(rest) > 2 else "")
    if kind == "drift_rule":
        statistic, column, *rest = parts[1:]
        measure = f" {rest.pop(0)}" if rest[0].type == "NAME" else ""
        return f"drift {statistic}({column}){measure} {rest[0]} {flat(rest[1])} -> {rest[3]}"
    if kind == "latency_rule" and len(parts) == 7:     # the unit sticks to a number (`50ms`), not to a name
        gap = "" if isinstance(parts[3], Tree) and parts[3].data == "number" else " "
        return f"latency {parts[1]} {parts[2]} {flat(parts[3])}{gap}{parts[4]} -> {parts[6]}"
    return " ".join(flat(p) for p in parts)   # rows_rule, expect_rule, metric_rule, allow: words in order


def flat_modifier(mod: Tree) -> str:
    return " ".join(flat(p) for p in kids(mod))


# ---------------------------------------------------------------- the printer


class _Printer:
    def __init__(self, comments: list[tuple[Position, str]]):
        self.out: list[str] = []
        self.comments = comments
        self.done = [False] * len(comments)
        self.last_line = 0          # source line of the last thing printed, for blank lines
        self.block_start = True     # no blank line right after a `{`
        self.blank_next = False     # a step was printed: a blank line follows it

    # ------------------------------------------------------------ lines and comments
    def gap(self, line: int) -> None:
        wanted = self.blank_next or (self.last_line and line > self.last_line + 1)
        if wanted and not self.block_start and self.out and self.out[-1] != "":
            self.out.append("")
        self.blank_next = self.block_start = False

    def comment_lines(self, before: Position, indent: int, after: Position = (0, 0), keep_gaps: bool = True) -> None:
        """Print, on their own lines, the comments not yet printed between `after` and `before`."""
        for i, (pos, text) in enumerate(self.comments):
            if pos >= before:
                break
            if not self.done[i] and pos > after:
                self.done[i] = True
                if keep_gaps:
                    self.gap(pos[0])
                    self.last_line = pos[0]
                self.out.append(INDENT * indent + text)

    def line(self, indent: int, text: str, first: Position, last: Position, limit: Position) -> None:
        """One printed line for the source from `first` to `last`, with its comments (those
        before `first` above it, those after `last` on its source line, up to `limit`, after it)."""
        self.comment_lines(first, indent)
        self.gap(first[0])
        self.comment_lines(last, indent, keep_gaps=False)     # from inside the statement: above it
        self.out.append(INDENT * indent + text)
        self.last_line = last[0]
        self.line_end_comments(last, limit)

    def has_comment(self, first: Position, last: Position) -> bool:
        return any(first < pos < last and not done for (pos, _), done in zip(self.comments, self.done))

    def fits(self, indent: int, text: str, first: Position, last: Position) -> bool:
        return len(INDENT * indent + text) <= LINE_WIDTH and not self.has_comment(first, last)

    def block(self, indent: int, header: str, entries: list, first: Position, brace: Position,
              limit: Position, suffix: str = "") -> None:
        """`header {`, the entries one per line, `}` + suffix."""
        self.line(indent, header + " {", first, first, start(entries[0]) if entries else brace)
        self.block_start = True
        self.items(entries, indent + 1, brace)
        self.comment_lines(brace, indent + 1)
        self.block_start = False
        self.out.append(INDENT * indent + "}" + suffix)
        self.last_line = brace[0]
        self.line_end_comments(brace, limit)

    def line_end_comments(self, after: Position, limit: Position) -> None:
        """Comments on the line of `after`, past it and before `limit` (where the next statement
        starts), go to the end of the line just printed."""
        for i, (pos, comment) in enumerate(self.comments):
            if pos[0] == after[0] and after <= pos < limit and not self.done[i]:
                self.done[i] = True
                self.out[-1] += "  " + comment

    # ------------------------------------------------------------ statements
    def pipeline(self, tree: Tree) -> None:
        self.block(0, f"pipeline {tree.children[1]}", kids(tree)[2:], start(tree), closing_brace(tree), _END)
        self.block_start = False
        self.comment_lines(_END, 0)

    def items(self, items: list, indent: int, brace: Position) -> None:
        i = 0
        while i < len(items):
            item = items[i]
            i += 1
            if item.data == "tune":
                options = []
                while (i < len(items) and items[i].data == "option" and str(items[i].children[0]) in TUNE_KEYS):
                    options.append(items[i])
                    i += 1
                self.tune(item, options, indent, start(items[i]) if i < len(items) else brace)
            else:
                self.statement(item, indent, start(items[i]) if i < len(items) else brace)

    def statement(self, node: Tree, indent: int, limit: Position) -> None:
        kind, parts = node.data, kids(node)
        first, last = start(node), end(node)
        if kind == "step":
            self.blank_next = not self.block_start
            header = " ".join(flat(p) for p in parts if not isinstance(p, Tree) or p.data == "dotted")
            items = [p for p in parts if isinstance(p, Tree) and p.data != "dotted"]
            if items or self.has_comment(first, last):
                self.block(indent, header, items, first, closing_brace(node), limit)
            else:
                self.line(indent, header + " {}", first, last, limit)
            self.blank_next = True
        elif kind == "block" and (str(parts[0]) in MULTILINE_BLOCKS or not self.fits(indent, flat(node), first, last)):
            self.block(indent, str(parts[0]), parts[1:], first, closing_brace(node), limit)
        elif kind == "option" and parts[1].data == "constructor" and not self.fits(indent, flat(node), first, last):
            ctor = parts[1]
            header = f"{parts[0]} = {flat(ctor.children[0])}"
            self.block(indent, header, kids(ctor)[1:], first, closing_brace(ctor), limit)
        else:
            self.line(indent, flat(node), first, last, limit)

    def tune(self, node: Tree, options: list[Tree], indent: int, limit: Position) -> None:
        """`tune grid { ... } cv = 5  metric = f1`: the options it owns stay on its closing line."""
        suffix = "".join("  " + flat(o) for o in options)
        first, last = start(node), end(options[-1]) if options else end(node)
        brace = closing_brace(node)
        # Comments between the `}` and the last option have no place of their own: above it.
        self.comment_lines(first, indent)
        self.gap(first[0])
        self.comment_lines(last, indent, after=brace, keep_gaps=False)
        if self.fits(indent, flat(node) + suffix, first, last):
            self.line(indent, flat(node) + suffix, first, last, limit)
        else:
            self.block(indent, f"tune {node.children[1]}", kids(node)[2:], first, brace, brace, suffix)
            self.last_line = last[0]
            self.line_end_comments(last, limit)
