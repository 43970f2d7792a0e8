"""A spec expression as a pyarrow dataset filter, for pushing a `filter` down into a Parquet read.

    to_arrow_filter(tree, params)  ->  pyarrow.compute.Expression, or None
    column_names(tree)             ->  the columns the expression reads

Only what Arrow evaluates with exactly the evaluator's meaning translates: columns, literals,
params, dates, comparisons, `and` / `or` / `not`, `in` / `not in` lists, `isin`, `between`, `isna`
and `notna`. Anything else (arithmetic, string and date functions) gives None: the caller then
reads the rows and filters them with runtime/expressions.py. Missing values follow the evaluator
(and pandas): a comparison with a missing value is false, except `!=`, which is true; Arrow's null
results are turned into those with `coalesce`.
"""
from __future__ import annotations

from typing import Any

from mlopsc.compiler import expression as ex

COMPARE = {"==": "equal", "!=": "not_equal", "<": "less", "<=": "less_equal", ">": "greater",
           ">=": "greater_equal"}


def column_names(tree: ex.Expr) -> set[str]:
    """Every column the expression reads (a pushed-down filter needs them in the file)."""
    names, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Column):
            names.add(node.name)
        stack.extend(ex.walk_children(node))
    return names


class _Untranslatable(Exception):
    pass


def to_arrow_filter(tree: ex.Expr, params: dict[str, Any] | None = None) -> Any | None:
    """The pyarrow.compute.Expression that keeps the same rows as `tree`, or None."""
    try:
        return _Translator(params or {}).boolean(tree)
    except _Untranslatable:
        return None


class _Translator:
    def __init__(self, params: dict[str, Any]) -> None:
        import pyarrow.compute as pc

        self.pc, self.params = pc, params

    def boolean(self, node: ex.Expr) -> Any:
        pc = self.pc
        if isinstance(node, ex.Binary) and node.op in ("and", "or"):
            left, right = self.boolean(node.left), self.boolean(node.right)
            return (left & right) if node.op == "and" else (left | right)
        if isinstance(node, ex.Unary) and node.op == "not":
            return ~self.boolean(node.operand)
        if isinstance(node, ex.Binary) and node.op in COMPARE:
            result = getattr(pc, COMPARE[node.op])(self.value(node.left), self.value(node.right))
            return self.known(result, node.op == "!=")
        if isinstance(node, ex.Binary) and node.op in ("in", "not in") and isinstance(node.right, ex.ListOf):
            inside = self.isin(node.left, node.right)
            return ~inside if node.op == "not in" else inside
        if isinstance(node, ex.Call) and node.function in ("isna", "notna"):
            missing = pc.is_null(self.value(node.args[0]), nan_is_null=True)
            return missing if node.function == "isna" else ~missing
        if isinstance(node, ex.Call) and node.function == "isin" and isinstance(node.args[1], ex.ListOf):
            return self.isin(node.args[0], node.args[1])
        if isinstance(node, ex.Call) and node.function == "between":
            value, low, high = (self.value(a) for a in node.args)
            return self.known(pc.greater_equal(value, low) & pc.less_equal(value, high), False)
        raise _Untranslatable

    def isin(self, value: ex.Expr, items: ex.ListOf) -> Any:
        import pyarrow as pa

        values = [self.literal(item) for item in items.items]
        return self.known(self.pc.is_in(self.value(value), value_set=pa.array(values), skip_nulls=True), False)

    def known(self, result: Any, missing: bool) -> Any:
        """`result`, with what a missing value means in the evaluator where Arrow gives null."""
        import pyarrow.dataset as ds

        return self.pc.coalesce(result, ds.scalar(missing))

    def value(self, node: ex.Expr) -> Any:
        import pyarrow.dataset as ds

        if isinstance(node, ex.Column):
            return ds.field(node.name)
        return ds.scalar(self.literal(node))

    def literal(self, node: ex.Expr) -> Any:
        if isinstance(node, ex.Constant) and node.value is not None:
            return node.value
        if isinstance(node, ex.DateConstant):
            import datetime

            return datetime.datetime.fromisoformat(node.value)
        if isinstance(node, ex.ParamValue) and node.name in self.params:
            return self.params[node.name]
        raise _Untranslatable
