"""Spec strings -> expression trees: `parse_expression("year < 2009", span)`.

The grammar (expression.lark) accepts a little more than the language, so that a construct people
bring from pandas (`x.str.lower()`, `df[...]`, `@local`, `f(x)(y)`) is refused here with a message
that says what to write instead, at the offending token, rather than with a bare syntax error.
Positions inside the string map to the spec: a diagnostic points at the token, not at the string.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from . import expression as ex
from . import ir
from .errors import Diagnostic, SpecError
from .expression_functions import MAX_DEPTH, MAX_LENGTH

GRAMMAR = Path(__file__).with_name("expression.lark")
LAMBDA = re.compile(r"(?<![`\w])lambda\b")
CONSTANTS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
TOKEN_WORDS = {
    "RPAR": "')'", "RSQB": "']'", "COMMA": "','", "DOT": "'.'", "LPAR": "'('", "LSQB": "'['",
    "COMP": "a comparison", "IN": "'in'", "NOT": "'not'", "TILDE": "'~'", "OR": "'or'", "VBAR": "'|'",
    "AND": "'and'", "AMPERSAND": "'&'", "ADD_OP": "'+' or '-'", "MUL_OP": "'*', '/' or '%'",
}
VALUE_TOKENS = frozenset(("NAME", "QUOTED_NAME", "NUMBER", "STRING"))


class Refused(Exception):
    """A problem found while building the tree; carries the offsets of the offending text."""

    def __init__(self, problem: ex.Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="basic", maybe_placeholders=False,
                cache=True)


def parse_expression(text: str, span: ir.Span | None = None) -> tuple[ir.Expression | None, list[Diagnostic]]:
    """The expression's tree, or None and the diagnostics that say why not (positioned in the spec
    when `span`, the string's span, is given)."""
    try:
        tree = parse_tree(text)
    except Refused as refused:
        return None, [diagnostic(refused.problem, text, span)]
    return ir.Expression(text=text, tree=tree, span=span), []


def parse_tree(text: str) -> ex.Expr:
    """The tree of `text`; raises Refused with the first problem."""
    if len(text) > MAX_LENGTH:
        raise Refused(ex.Problem("E361", f"the expression is longer than {MAX_LENGTH} characters", 0, len(text),
                                 "split it into several rules"))
    if not text.strip():
        raise Refused(ex.Problem("E360", "the expression is empty", 0, len(text), 'write e.g. "x > 0"'))
    try:
        parsed = _parser().parse(text)
    except UnexpectedInput as exc:
        raise Refused(_syntax_problem(exc, text)) from None
    builder = _Builder()
    try:
        return builder.value(builder.transform(parsed) if isinstance(parsed, Tree) else builder.leaf(parsed))
    except VisitError as exc:
        if isinstance(exc.orig_exc, Refused):
            raise exc.orig_exc from None
        raise


def expression(text: str) -> ir.Expression:
    """The expression of `text`, for IR built in Python; raises SpecError when it is not valid."""
    built, problems = parse_expression(text)
    problems += [diagnostic(p, text, None) for p in ex.check(built.tree)] if built else []
    if problems:
        raise SpecError(problems)
    return built


def diagnostic(problem: ex.Problem, text: str, span: ir.Span | None, context: str = "") -> Diagnostic:
    message = f"{context}{problem.message}" + ("" if span else f" in `{text}`")
    return Diagnostic(problem.code, message, inner_span(span, text, problem.at, problem.to), problem.hint)


def inner_span(span: ir.Span | None, text: str, at: int, to: int) -> ir.Span | None:
    """Where characters at..to of the decoded string stand in the spec: after the opening quote,
    counting each character as the spec writes it (an escaped `\\"` is two)."""
    if span is None or span.line != span.end_line:
        return span
    start = span.col + 1 + _written_length(text[:at])
    end = start + max(1, _written_length(text[at:max(to, at + 1)]))
    return ir.Span(file=span.file, line=span.line, col=start, end_line=span.line, end_col=end)


def _written_length(decoded: str) -> int:
    return len(json.dumps(decoded, ensure_ascii=False)) - 2


def _syntax_problem(exc: UnexpectedInput, text: str) -> ex.Problem:
    at = getattr(exc, "pos_in_stream", None) or 0
    lam = LAMBDA.search(text)
    if lam and lam.start() <= at:
        return ex.Problem("E361", "lambdas are not part of the expression language", lam.start(), lam.end(),
                          "functions of the table are called by name: lower(x)")
    if isinstance(exc, UnexpectedCharacters):
        char = text[at]
        if char == "@":
            return ex.Problem("E361", "'@' locals are not part of the expression language", at, at + 1,
                              "use params.NAME for a pipeline parameter")
        if char == "=":
            return ex.Problem("E360", "unexpected '='", at, at + 1, "compare with ==")
        if not char.isascii():
            return ex.Problem("E360", f"unexpected character '{char}' (U+{ord(char):04X})", at, at + 1,
                              "names are ASCII letters, digits and _; write other column names in backquotes")
        return ex.Problem("E360", f"unexpected character '{char}'", at, at + 1, _hint_for(char))
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        expected = getattr(exc, "expected", None) or getattr(exc, "accepts", None) or set()
        return ex.Problem("E360", "the expression ends too early", len(text), len(text), _expected(expected))
    token: Token = exc.token
    end = token.end_pos if token.end_pos is not None else at + len(token)
    return ex.Problem("E360", f"unexpected '{token.value}'", token.start_pos, end, _expected(exc.accepts or exc.expected))


def _hint_for(char: str) -> str | None:
    return {"[": None, ":": "slices are not part of the expression language",
            "{": "sets and dicts are not part of the expression language: write a list [a, b]"}.get(char)


def _expected(terminals) -> str | None:
    if VALUE_TOKENS & set(terminals):
        return "expected a value: a column, a number, a string, a function call, a list or '('"
    words = sorted({TOKEN_WORDS[t] for t in terminals if t in TOKEN_WORDS})
    return f"expected {', '.join(words)}" if words else None


class _Attribute:
    """`base.name` while it is being built: a method call if a call follows, else refused."""

    def __init__(self, base: ex.Expr, name: Token) -> None:
        self.base, self.name = base, name


class _Builder(Transformer_NonRecursive):
    """Builds expression nodes from lark's tree; refuses what the language does not have."""

    def __init__(self) -> None:
        super().__init__()
        self.depths: dict[int, int] = {}

    # ------------------------------------------------------------ helpers
    def node(self, node: ex.ExprNode, *children: ex.ExprNode) -> ex.ExprNode:
        level = 1 + max((self.depths.get(id(c), 1) for c in children), default=0)
        if level > MAX_DEPTH:
            raise Refused(ex.Problem("E361", f"the expression nests more than {MAX_DEPTH} levels deep",
                                     node.at, node.to, "split it into simpler rules"))
        self.depths[id(node)] = level
        return node

    def value(self, item) -> ex.Expr:
        if isinstance(item, _Attribute):
            at = item.name.start_pos - 1
            raise Refused(ex.Problem("E361", f"attribute access '.{item.name}' is not allowed", at,
                                     item.name.end_pos, "call a function of the table: x.lower() or lower(x); "
                                     "a pipeline parameter is params.NAME"))
        return item

    def leaf(self, tok: Token) -> ex.Expr:
        return getattr(self, {"NAME": "name", "QUOTED_NAME": "quoted_name", "NUMBER": "number",
                              "STRING": "string"}[tok.type])([tok])

    # ------------------------------------------------------------ atoms
    def name(self, children: list) -> ex.Expr:
        tok = children[0]
        if tok.value.startswith("__"):
            raise Refused(ex.Problem("E361", f"'{tok}' is not part of the expression language",
                                     tok.start_pos, tok.end_pos, "names that start with '__' are never allowed"))
        if tok.value in CONSTANTS:
            return ex.Constant(value=CONSTANTS[tok.value], at=tok.start_pos, to=tok.end_pos)
        return ex.Column(name=tok.value, at=tok.start_pos, to=tok.end_pos)

    def quoted_name(self, children: list) -> ex.Expr:
        tok = children[0]
        return ex.Column(name=tok.value[1:-1], at=tok.start_pos, to=tok.end_pos)

    def number(self, children: list) -> ex.Expr:
        tok = children[0]
        whole = tok.value.isdigit()
        return ex.Constant(value=int(tok.value) if whole else float(tok.value), at=tok.start_pos, to=tok.end_pos)

    def string(self, children: list) -> ex.Expr:
        tok = children[0]
        out, chars, i = [], tok.value[1:-1], 0
        while i < len(chars):
            if chars[i] == "\\":
                escaped = ESCAPES.get(chars[i + 1])
                if escaped is None:
                    at = tok.start_pos + 1 + i
                    raise Refused(ex.Problem("E360", f"unknown escape '\\{chars[i + 1]}'", at, at + 2,
                                             "escapes: \\\\ \\' \\\" \\n \\t"))
                out.append(escaped)
                i += 2
            else:
                out.append(chars[i])
                i += 1
        return ex.Constant(value="".join(out), at=tok.start_pos, to=tok.end_pos)

    def group(self, children: list) -> ex.Expr:
        return self.value(children[1])

    def list_of(self, children: list) -> ex.Expr:
        items = children[1].children if len(children) == 3 else []
        items = [self.value(i) for i in items]
        return self.node(ex.ListOf(items=tuple(items), at=children[0].start_pos, to=children[-1].end_pos), *items)

    # ------------------------------------------------------------ postfix
    def attribute(self, children: list):
        base, name = self.value(children[0]), children[2]
        if name.value.startswith("__"):
            raise Refused(ex.Problem("E361", f"'{name}' is not part of the expression language",
                                     name.start_pos, name.end_pos, "names that start with '__' are never allowed"))
        if isinstance(base, ex.Column) and base.name == "params" and base.to - base.at == len("params"):
            return ex.ParamValue(name=name.value, at=base.at, to=name.end_pos)
        return _Attribute(base, name)

    def call(self, children: list) -> ex.Expr:
        callee, rpar = children[0], children[-1]
        args = [self.value(a) for a in children[2].children] if len(children) == 4 else []
        if isinstance(callee, _Attribute):
            subject = self.value(callee.base)
            return self.node(ex.Call(function=callee.name.value, args=(subject, *args), at=subject.at,
                                     to=rpar.end_pos, name_at=callee.name.start_pos), subject, *args)
        if isinstance(callee, ex.Column) and callee.to - callee.at == len(callee.name):
            if callee.name == "date":
                return self.date(callee, args, rpar)
            return self.node(ex.Call(function=callee.name, args=tuple(args), at=callee.at, to=rpar.end_pos,
                                     name_at=callee.at), *args)
        raise Refused(ex.Problem("E361", "only functions of the table can be called", callee.at, rpar.end_pos,
                                 "calls on call results, columns or values are not part of the language"))

    def date(self, callee: ex.Column, args: list, rpar: Token) -> ex.Expr:
        if len(args) != 1 or not isinstance(args[0], ex.Constant) or not isinstance(args[0].value, str):
            raise Refused(ex.Problem("E360", "date() takes one string", callee.at, rpar.end_pos,
                                     'write date("2015-01-31")'))
        if ex.parse_date(args[0].value) is None:
            raise Refused(ex.Problem("E309", f"'{args[0].value}' is not a date", args[0].at, args[0].to,
                                     "write an ISO date: date(\"2015-01-31\") or date(\"2015-01-31T12:00\")"))
        return ex.DateConstant(value=args[0].value, at=callee.at, to=rpar.end_pos)

    def subscript(self, children: list) -> ex.Expr:
        base = self.value(children[0])
        raise Refused(ex.Problem("E361", "subscripts are not part of the expression language", base.at,
                                 children[-1].end_pos, "compare whole columns, e.g. x > 0"))

    # ------------------------------------------------------------ operators
    def sign(self, children: list) -> ex.Expr:
        op, operand = children[0], self.value(children[1])
        if op.value == "+":
            return operand
        if isinstance(operand, ex.Constant) and isinstance(operand.value, (int, float)) \
                and not isinstance(operand.value, bool):
            return ex.Constant(value=-operand.value, at=op.start_pos, to=operand.to)
        return self.node(ex.Unary(op="-", operand=operand, at=op.start_pos, to=operand.to), operand)

    def negation(self, children: list) -> ex.Expr:
        operand = self.value(children[-1])
        at = children[0].start_pos if isinstance(children[0], Token) else operand.at
        return self.node(ex.Unary(op="not", operand=operand, at=at, to=operand.to), operand)

    def logical_or(self, children: list) -> ex.Expr:
        return self.logical("or", children)

    def logical_and(self, children: list) -> ex.Expr:
        return self.logical("and", children)

    def logical(self, op: str, children: list) -> ex.Expr:
        left, right = self.value(children[0]), self.value(children[-1])
        return self.node(ex.Binary(op=op, left=left, right=right, at=left.at, to=right.to), left, right)

    def arithmetic(self, children: list) -> ex.Expr:
        left, op, right = self.value(children[0]), children[1], self.value(children[2])
        return self.node(ex.Binary(op=op.value, left=left, right=right, at=left.at, to=right.to), left, right)

    def comp_op(self, children: list) -> str:
        return "not in" if len(children) == 2 else children[0].value

    def comparison(self, children: list) -> ex.Expr:
        operands = [self.value(c) for c in children[0::2]]
        ops = children[1::2]
        pairs = []
        for left, op, right in zip(operands, ops, operands[1:]):
            pairs.append(self.node(ex.Binary(op=op, left=left, right=right, at=left.at, to=right.to), left, right))
        result = pairs[0]
        for pair in pairs[1:]:
            result = self.node(ex.Binary(op="and", left=result, right=pair, at=result.at, to=pair.to), result, pair)
        return result
