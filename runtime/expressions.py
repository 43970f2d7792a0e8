"""Evaluates a spec expression (a `filter` or an `expect`) over a DataFrame, vectorized.

The tree comes from the compiler (compiler/expression.py); it is validated again here before
anything runs (defence in depth: IR built in Python or a generated file edited by hand passes
through here too). Evaluation dispatches on the node classes and on two fixed tables, OPERATORS
and IMPLEMENTATIONS; no name from the tree is ever looked up as an attribute, and no text reaches
`eval`, `DataFrame.query`, `DataFrame.eval` or numexpr.

Missing values behave as in pandas: a comparison with a missing value is false (`!=` is true), a
missing result of a function counts as false where true/false is needed.
"""
from __future__ import annotations

import difflib
import operator
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import expression as ex
from mlopsc.compiler import ir
from mlopsc.compiler.expression_functions import FUNCTIONS

from .core import StepError

if TYPE_CHECKING:
    import pandas as pd

OPERATORS = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "%": operator.mod,
}


class Failure(Exception):
    """An expression that could not be evaluated: what went wrong, at which node."""

    def __init__(self, message: str, node: ex.ExprNode, expected: str | None = None) -> None:
        super().__init__(message)
        self.message, self.node, self.expected = message, node, expected


def _text(s: pd.Series, name: str) -> Any:
    try:
        return s.str
    except AttributeError:
        raise TypeError(f"{name}() needs text, got values of type {s.dtype}") from None


def as_dates(s: pd.Series, errors: str = "raise") -> pd.Series:
    """Text read as dates: ISO 8601 (dates alone or with a time), the form specs and CSVs use."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    return pd.to_datetime(s, format="ISO8601", errors=errors)


def _dates(s: pd.Series, name: str) -> Any:
    try:
        return as_dates(s).dt
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}() needs dates: {str(exc).splitlines()[0]}") from None


def _numeric(function):
    def apply(s, *args):
        import numpy as np

        if getattr(s, "dtype", None) is not None and not np.issubdtype(np.asarray(s).dtype, np.number) \
                and str(s.dtype) not in ("Int64", "Float64", "Int32", "Float32"):
            raise TypeError(f"needs numbers, got values of type {s.dtype}")
        return function(np, s, *args)
    return apply


# One entry per name of FUNCTIONS (checked below): the pandas operation the table names.
IMPLEMENTATIONS = {
    "isna": lambda s: s.isna(),
    "notna": lambda s: s.notna(),
    "between": lambda s, low, high: s.between(low, high),
    "isin": lambda s, values: s.isin(values),
    "abs": _numeric(lambda np, s: s.abs()),
    "round": _numeric(lambda np, s, digits=0: s.round(int(digits))),
    "log": _numeric(lambda np, s: np.log(s)),
    "exp": _numeric(lambda np, s: np.exp(s)),
    "sqrt": _numeric(lambda np, s: np.sqrt(s)),
    "lower": lambda s: _text(s, "lower").lower(),
    "upper": lambda s: _text(s, "upper").upper(),
    "strip": lambda s: _text(s, "strip").strip(),
    "len": lambda s: _text(s, "len").len(),
    "startswith": lambda s, prefix: _text(s, "startswith").startswith(prefix),
    "endswith": lambda s, suffix: _text(s, "endswith").endswith(suffix),
    "contains": lambda s, text: _text(s, "contains").contains(text, regex=False),
    "matches": lambda s, pattern: _text(s, "matches").match(pattern),
    "year": lambda s: _dates(s, "year").year,
    "month": lambda s: _dates(s, "month").month,
    "day": lambda s: _dates(s, "day").day,
    "weekday": lambda s: _dates(s, "weekday").weekday,
    "hour": lambda s: _dates(s, "hour").hour,
}
if set(IMPLEMENTATIONS) != set(FUNCTIONS):     # the table is the contract: a drift is a bug in mlopsc
    raise ImportError(f"runtime expressions and the function table differ: {set(IMPLEMENTATIONS) ^ set(FUNCTIONS)}")


def validate(expression: Any, step: ir.Step, span: ir.Span | None) -> ir.Expression:
    """The expression, re-validated from its plain data: only the language's node kinds, functions
    of the table, bounded size. A node that pydantic would not build, or that `check` refuses, is
    a StepError here whatever path it came by."""
    import warnings

    from pydantic import ValidationError

    try:
        with warnings.catch_warnings():     # a node pydantic did not build dumps with a warning
            warnings.simplefilter("ignore")
            data = expression.model_dump() if isinstance(expression, ir.Expression) else expression
        checked = ir.Expression.model_validate(data)
        problems = ex.check(checked.tree, want="any")
    except (ValidationError, RecursionError, TypeError, ValueError) as exc:
        raise StepError("the expression is not a valid expression tree", step=step.name, span=span,
                        expected="an expression as `mlopsc build` writes it",
                        found=str(exc).splitlines()[0][:200]) from None
    if problems:
        first = problems[0]
        raise StepError(f"the expression is refused: {first.message}", step=step.name, span=span,
                        expected=first.hint or "an expression of the language (docs/language.md)",
                        found=_excerpt(checked.text, first.at, first.to))
    return checked


def evaluate(expression: ir.Expression, df: pd.DataFrame, params: dict[str, Any]) -> Any:
    """The expression's value per row (a Series) or, without columns, a scalar."""
    return _Evaluator(df, params).value(expression.tree)


def rows_where(expression: ir.Expression, df: pd.DataFrame, params: dict[str, Any], step: ir.Step,
               what: str = "filter", span: ir.Span | None = None) -> pd.Series:
    """A boolean mask of the rows where the expression is true (missing counts as false); a
    StepError naming the step, the expression and the failing part otherwise."""
    span = span or expression.span
    checked = validate(expression, step, span)
    try:
        return truth(evaluate(checked, df, params), df, checked.tree)
    except Failure as failure:
        raise StepError(f"the {what} cannot be evaluated: {failure.message}", step=step.name, span=span,
                        expected=failure.expected, found=f"in `{_excerpt(checked.text, failure.node.at, failure.node.to)}`"
                        f" of `{checked.text}`") from None


def truth(value: Any, df: pd.DataFrame, node: ex.ExprNode) -> pd.Series:
    import pandas as pd

    if isinstance(value, pd.Series):
        if pd.api.types.is_bool_dtype(value.dtype):
            return value.fillna(False).astype(bool) if value.hasnans else value.astype(bool)
        if value.dtype == object and value.dropna().map(type).eq(bool).all():
            return value.fillna(False).astype(bool)
        raise Failure(f"it gives values of type {value.dtype} per row, not true/false", node,
                      'a comparison, e.g. "a > b"')
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return pd.Series(bool(value), index=df.index)
    raise Failure(f"it gives the single value {value!r}, not true/false per row", node, 'a comparison, e.g. "a > b"')


def _excerpt(text: str, at: int, to: int) -> str:
    return text[at:max(to, at + 1)]


class _Evaluator:
    def __init__(self, df: pd.DataFrame, params: dict[str, Any]) -> None:
        self.df, self.params = df, params

    def value(self, node: ex.Expr) -> Any:
        if isinstance(node, ex.Column):
            if node.name not in self.df.columns:
                close = difflib.get_close_matches(node.name, [str(c) for c in self.df.columns], n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise Failure(f"unknown column '{node.name}'{hint}", node,
                              f"one of the columns: {', '.join(map(str, self.df.columns))}")
            return self.df[node.name]
        if isinstance(node, ex.Constant):
            return node.value
        if isinstance(node, ex.DateConstant):
            import pandas as pd

            return pd.Timestamp(node.value)
        if isinstance(node, ex.ParamValue):
            if node.name not in self.params:
                raise Failure(f"unknown param params.{node.name}", node,
                              f"one of: {', '.join(sorted(self.params)) or '(no params)'}")
            return self.params[node.name]
        if isinstance(node, ex.ListOf):
            return [self.value(item) for item in node.items]
        if isinstance(node, ex.Call):
            return self.call(node)
        if isinstance(node, ex.Unary):
            operand = self.value(node.operand)
            if node.op == "not":
                return ~truth(operand, self.df, node.operand)
            return self.apply(operator.neg, node, operand)
        if isinstance(node, ex.Binary):
            return self.binary(node)
        raise Failure(f"'{type(node).__name__}' is not part of the expression language", ex.Constant(value=None))

    def binary(self, node: ex.Binary) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        if node.op in ("and", "or"):
            lhs, rhs = truth(left, self.df, node.left), truth(right, self.df, node.right)
            return (lhs & rhs) if node.op == "and" else (lhs | rhs)
        if node.op in ("in", "not in"):
            inside = self.series(left).isin(right)
            return ~inside if node.op == "not in" else inside
        left, right = self.align_dates(left, right)
        return self.apply(OPERATORS[node.op], node, left, right)

    def call(self, node: ex.Call) -> Any:
        args = [self.value(arg) for arg in node.args]
        args[0] = self.series(args[0])
        return self.apply(IMPLEMENTATIONS[node.function], node, *args)

    def apply(self, function, node: ex.ExprNode, *args: Any) -> Any:
        try:
            return function(*args)
        except (TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
            raise Failure(_reason(exc), node, _expected(node)) from None

    def series(self, value: Any) -> pd.Series:
        import pandas as pd

        return value if isinstance(value, pd.Series) else pd.Series([value] * len(self.df), index=self.df.index)

    def align_dates(self, left: Any, right: Any) -> tuple[Any, Any]:
        """A text column compared with date("...") is read as dates first, as year() would."""
        import pandas as pd

        for a, b in ((left, right), (right, left)):
            if isinstance(b, pd.Timestamp) and isinstance(a, pd.Series) and not pd.api.types.is_datetime64_any_dtype(a):
                converted = as_dates(a, errors="coerce")
                return (converted, right) if a is left else (left, converted)
        return left, right


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not supported between" in text or "Invalid comparison" in text or "unsupported operand" in text:
        return f"the values cannot be compared or combined ({text})"
    return text


def _expected(node: ex.ExprNode) -> str:
    if isinstance(node, ex.Call):
        fn = FUNCTIONS[node.function]
        return f"{node.function}() of a {fn.subject} column"
    return "operands of matching types (numbers with numbers, text with text)"
