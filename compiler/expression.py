"""Spec expressions as data: the typed tree of a `filter` or an `expect`, and its validation.

    filter = "year < 2009 and island in ['Dream', 'Biscoe']"
    ->  Binary(and, Binary(<, Column(year), Constant(2009)),
                    Binary(in, Column(island), ListOf([Constant('Dream'), Constant('Biscoe')])))

The compiler parses the spec's string into this tree (expression_parser.py) and validates it
(`check`); the runtime validates the same tree again and evaluates it with its own vectorized
evaluator (runtime/expressions.py). No text of a spec ever reaches `eval`, `DataFrame.query` or
`DataFrame.eval`: the only operations are this module's node kinds and the functions of
`expression_functions.FUNCTIONS`.

`at` and `to` are character offsets into the expression's text (the decoded string), so that an
error points at the token inside the spec's string. This module imports pydantic and the stdlib
only: workers load it without lark.
"""
from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .expression_functions import FUNCTIONS, MAX_DEPTH, Function

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/", "%")
BinaryOp = Literal["and", "or", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "+", "-", "*", "/", "%"]


class ExprNode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: int = 0
    to: int = 0


class Column(ExprNode):
    """A column, written `name` or `` `name with spaces` ``."""

    kind: Literal["column"] = "column"
    name: str


class Constant(ExprNode):
    kind: Literal["constant"] = "constant"
    value: bool | int | float | str | None


class DateConstant(ExprNode):
    """`date("2015-01-01")`: an ISO date or date-time, checked when parsed."""

    kind: Literal["date"] = "date"
    value: str


class ParamValue(ExprNode):
    """`params.NAME`: the pipeline parameter's value in this run."""

    kind: Literal["param"] = "param"
    name: str


class ListOf(ExprNode):
    """`[1, 2, 3]`: only as the right side of `in` / `not in` or the argument of `isin`."""

    kind: Literal["list"] = "list"
    items: tuple[Expr, ...] = ()


class Call(ExprNode):
    """`lower(name)` or `name.lower()`: a function of the table, its subject first."""

    kind: Literal["call"] = "call"
    function: str
    args: tuple[Expr, ...] = ()
    name_at: int = 0           # where the function's name is written


class Unary(ExprNode):
    kind: Literal["unary"] = "unary"
    op: Literal["not", "-"]
    operand: Expr


class Binary(ExprNode):
    """Operators; a chained comparison `a < b < c` is built as `a < b and b < c`."""

    kind: Literal["binary"] = "binary"
    op: BinaryOp
    left: Expr
    right: Expr


Expr = Annotated[Column | Constant | DateConstant | ParamValue | ListOf | Call | Unary | Binary,
                 Field(discriminator="kind")]
for _model in (ListOf, Call, Unary, Binary):
    _model.model_rebuild()


@dataclass(frozen=True)
class Problem:
    """What is wrong with an expression, where (offsets into its text), and what to write instead."""

    code: str          # E360 syntax, E361 a construct the language does not have, E206/E207/E213 names, E309 types
    message: str
    at: int
    to: int
    hint: str | None = None


def parse_date(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def depth(tree: Expr) -> int:
    """How deeply the tree nests, counted without recursion (a hostile tree may be very deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in walk_children(node))
    return deepest


def walk_children(node: Expr) -> tuple:
    if isinstance(node, ListOf):
        return node.items
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    return ()


def check(tree: Expr, columns: Collection[str] | None = None, types: dict[str, str] | None = None,
          params: dict[str, str] | None = None, want: str = "bool") -> list[Problem]:
    """Every problem of `tree`: functions outside the table, wrong arity, columns or params that do
    not exist (when the `columns` and `params`, name -> type, are known), types that cannot work
    (`types`: declared column types, as expression types), and a result that is not true/false per
    row (`want`)."""
    if depth(tree) > MAX_DEPTH:
        return [Problem("E361", f"the expression nests more than {MAX_DEPTH} levels deep", tree.at, tree.to,
                        "split it into simpler rules")]
    checker = _Checker(columns, types or {}, params)
    kind = checker.type_of(tree)
    if want == "bool" and kind not in ("bool", "any") and not checker.problems:
        checker.problems.append(Problem("E309", f"the expression gives a {kind} per row, not true/false",
                                        tree.at, tree.to, "compare it, e.g. `x > 0`"))
    return checker.problems


class _Checker:
    def __init__(self, columns: Collection[str] | None, types: dict[str, str],
                 params: dict[str, str] | None) -> None:
        self.columns, self.types, self.params = columns, types, params
        self.problems: list[Problem] = []

    def fail(self, code: str, message: str, node: ExprNode, hint: str | None = None) -> str:
        self.problems.append(Problem(code, message, node.at, node.to, hint))
        return "any"

    def type_of(self, node: Expr) -> str:
        if isinstance(node, Column):
            if self.columns is not None and node.name not in self.columns:
                return self.fail("E207", f"unknown column '{node.name}'", node, _did_you_mean(node.name, self.columns))
            return self.types.get(node.name, "any")
        if isinstance(node, Constant):
            return _constant_type(node.value)
        if isinstance(node, DateConstant):
            if parse_date(node.value) is None:
                return self.fail("E309", f"'{node.value}' is not a date", node, 'write date("2015-01-31")')
            return "datetime"
        if isinstance(node, ParamValue):
            if self.params is None:
                return "any"
            if node.name not in self.params:
                return self.fail("E206", f"unknown param '{node.name}'", node, _did_you_mean(node.name, self.params))
            return self.params[node.name]
        if isinstance(node, ListOf):
            for item in node.items:
                self.list_item(item)
            return "list"
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            operand = self.type_of(node.operand)
            if node.op == "not":
                return self.expect(operand, "bool", node.operand, "`not`")
            return self.expect(operand, "number", node.operand, "`-`")
        if isinstance(node, Binary):
            return self.binary(node)
        return self.fail("E361", f"'{type(node).__name__}' is not part of the expression language", node)

    def list_item(self, item: Expr) -> None:
        plain = isinstance(item, (Constant, DateConstant, ParamValue)) or (
            isinstance(item, Unary) and item.op == "-" and isinstance(item.operand, Constant))
        if not plain:
            self.fail("E361", "a list holds values only", item, "write literals or params.NAME, e.g. [1, 2]")
            return
        self.type_of(item)

    def expect(self, found: str, wanted: str, node: Expr, what: str) -> str:
        if found not in (wanted, "any"):
            self.fail("E309", f"{what} needs a {wanted}, got a {found}", node)
        return wanted

    def binary(self, node: Binary) -> str:
        left, right = self.type_of(node.left), self.type_of(node.right)
        if node.op in ("and", "or"):
            self.expect(left, "bool", node.left, f"`{node.op}`")
            self.expect(right, "bool", node.right, f"`{node.op}`")
            return "bool"
        if node.op in ("in", "not in"):
            if not isinstance(node.right, ListOf):
                self.fail("E309", f"`{node.op}` needs a list on its right", node.right, "write x in [1, 2]")
            return "bool"
        if node.op in ARITHMETIC:
            for side, kind in ((node.left, left), (node.right, right)):
                self.expect(kind, "number", side, f"`{node.op}`")
            return "number"
        if "null" in (left, right):
            null = node.left if left == "null" else node.right
            return self.fail("E309", "a comparison with null is never true", null,
                             "test for missing values with isna(x) or notna(x)")
        if not _comparable(left, right):
            self.fail("E309", f"`{node.op}` compares a {left} with a {right}", node.right if right != "any" else node.left)
        return "bool"

    def call(self, node: Call) -> str:
        function = FUNCTIONS.get(node.function)
        if function is None:
            if node.function.startswith("_"):
                return self.fail("E361", f"'{node.function}' is not a function of the language", node,
                                 "names that start with '_' are never callable")
            hint = _did_you_mean(node.function, FUNCTIONS) or "functions: " + ", ".join(sorted(FUNCTIONS))
            self.problems.append(Problem("E213", f"unknown function '{node.function}'", node.name_at,
                                         node.name_at + len(node.function), hint))
            return "any"
        kinds = [self.type_of(arg) for arg in node.args]
        if not _arity_ok(function, len(node.args)):
            return self.fail("E309", f"{node.function}() takes {_arity_words(function)}, got {len(node.args)}",
                             node, f"write {usage(node.function)}")
        wanted = (function.subject,) + function.args
        for arg, kind, want in zip(node.args, kinds, wanted):
            if want == "list":
                if not isinstance(arg, ListOf):
                    self.fail("E309", f"{node.function}() needs a list, e.g. [1, 2]", arg)
            elif want == "datetime" and kind == "string":
                continue            # a text column of dates is parsed first (pandas.to_datetime)
            elif want != "any" and kind not in (want, "any"):
                subject = f"'{arg.name}' is a {kind} column" if isinstance(arg, Column) else f"got a {kind}"
                self.fail("E309", f"{node.function}() needs a {want}: {subject}", arg)
        if node.function == "matches" and len(node.args) == 2 and isinstance(node.args[1], Constant):
            try:
                re.compile(str(node.args[1].value))
            except re.error as exc:
                self.fail("E309", f"not a valid regular expression: {exc}", node.args[1])
        return function.result


def usage(name: str) -> str:
    function = FUNCTIONS[name]
    args = ["x"] + [f"{kind}" for kind in function.args]
    return f"{name}({', '.join(args)}) or x.{name}({', '.join(args[1:])})"


def _arity_ok(function: Function, given: int) -> bool:
    most = 1 + len(function.args)
    return most - function.optional <= given <= most


def _arity_words(function: Function) -> str:
    most = 1 + len(function.args)
    least = most - function.optional
    count = f"{least} to {most}" if least != most else str(most)
    return f"{count} argument{'s' if most > 1 else ''}"


def _constant_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _comparable(left: str, right: str) -> bool:
    if "any" in (left, right) or left == right:
        return True
    return {left, right} == {"datetime", "string"}     # a date column against "2015-01-01" parses the text


def _did_you_mean(name: str, candidates) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None
