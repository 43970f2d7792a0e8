"""Fuzz: any expression the compiler accepts evaluates, on a small frame with missing values, to what
an independent row-by-row reference gives, and touches nothing outside the function table (no
exec, compile, import, process or socket while it runs: a CPython audit hook watches).

It also holds that the pyarrow translation keeps the same rows wherever it translates.
"""
from __future__ import annotations

import math
import sys
from datetime import datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlopsc.compiler import expression as ex
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import parse_tree
from mlopsc.runtime.arrow_filter import to_arrow_filter
from mlopsc.runtime.expressions import rows_where

NAN = float("nan")
ROWS = {
    "a": [1.5, NAN, -2.0, 0.0, 3.25, NAN, 10.0, -0.5],
    "b": [1, 2, 3, 4, 5, 6, 7, 8],
    "s": ["Adelie", None, "gentoo", "  Chinstrap ", "adelie", "Gentoo", None, "x"],
    "d": ["2007-01-05", "2008-06-30", None, "2009-12-31", "2007-11-11", "2008-02-29", "2009-01-01", None],
}
COLUMNS = {"a": "number", "b": "number", "s": "string", "d": "datetime"}
STEP = ir.Source(name="fuzz", format="csv", path="x.csv")
WATCHED = ("exec", "compile", "import", "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec",
           "os.fork", "socket.connect", "ctypes.dlopen", "open")
_events: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _events is not None and event.startswith(WATCHED):
        _events.append(event)


sys.addaudithook(_audit)     # cannot be removed; it records only while _events is a list


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = pd.DataFrame(ROWS)
    df["d"] = pd.to_datetime(df["d"])
    return df


# ---------------------------------------------------------------- expressions as text + reference

numbers = st.one_of(st.integers(-5, 12).map(str), st.sampled_from(["0.5", "2.25", "-1.5"]))


def _num(depth: int):
    leaves = st.one_of(st.sampled_from(["a", "b", "len(s)", "year(d)", "d.month()"]), numbers)
    if depth <= 0:
        return leaves
    sub = _num(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["+", "-", "*"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda x: f"abs({x})"),
        sub.map(lambda x: f"round({x})"),
    )


def _bool(depth: int):
    op = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    leaves = st.one_of(
        st.tuples(_num(1), op, _num(1)).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["s", "lower(s)", "s.strip()", "upper(s)"]), st.sampled_from(["==", "!="]),
                  st.sampled_from(["'adelie'", "'Gentoo'", "'x'", "'CHINSTRAP'"])).map(" ".join),
        st.sampled_from(["isna(a)", "notna(s)", "isna(d)", "s.startswith('G')", "contains(s, 'ent')",
                         "lower(s).endswith('e')", "matches(s, '[A-Z]')", "between(a, -1, 2)",
                         "b in [1, 3, 5]", "s not in ['x', 'Adelie']", "isin(b, [2, 4])",
                         "d >= date(\"2008-06-30\")", "d < date(\"2009-01-01\")"]),
    )
    if depth <= 0:
        return leaves
    sub = _bool(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["and", "or", "&", "|"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda x: f"not ({x})"),
        sub.map(lambda x: f"~({x})"),
    )


def reference(node: ex.Expr, row: dict):
    """Row-at-a-time Python semantics, written apart from the evaluator: missing is None."""
    if isinstance(node, ex.Column):
        value = row[node.name]
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    if isinstance(node, ex.Constant):
        return node.value
    if isinstance(node, ex.DateConstant):
        return datetime.fromisoformat(node.value)
    if isinstance(node, ex.ListOf):
        return [reference(i, row) for i in node.items]
    if isinstance(node, ex.Unary):
        value = reference(node.operand, row)
        return (not value) if node.op == "not" else (None if value is None else -value)
    if isinstance(node, ex.Binary):
        left, right = reference(node.left, row), reference(node.right, row)
        if node.op == "and":
            return bool(left) and bool(right)
        if node.op == "or":
            return bool(left) or bool(right)
        if node.op in ("in", "not in"):
            inside = left is not None and left in right
            return inside if node.op == "in" else not inside
        if left is None or right is None:
            return (node.op == "!=") if node.op in ex.COMPARISONS else None
        return {"==": lambda: left == right, "!=": lambda: left != right, "<": lambda: left < right,
                "<=": lambda: left <= right, ">": lambda: left > right, ">=": lambda: left >= right,
                "+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right}[node.op]()
    if isinstance(node, ex.Call):
        args = [reference(a, row) for a in node.args]
        subject = args[0]
        if node.function == "isna":
            return subject is None
        if node.function == "notna":
            return subject is not None
        if node.function == "isin":
            return subject is not None and subject in args[1]
        if subject is None:
            return None
        text_fns = {"lower": str.lower, "upper": str.upper, "strip": str.strip, "len": len}
        if node.function in text_fns:
            return text_fns[node.function](subject)
        predicates = {"startswith": str.startswith, "endswith": str.endswith,
                      "contains": lambda v, t: t in v}
        if node.function in predicates:
            return predicates[node.function](subject, args[1])
        if node.function == "matches":
            import re

            return re.match(args[1], subject) is not None
        if node.function == "between":
            return args[1] <= subject <= args[2]
        if node.function == "abs":
            return abs(subject)
        if node.function == "round":
            return float(round(subject))    # both halves-to-even, as numpy
        return getattr(subject, {"year": "year", "month": "month"}[node.function])
    raise AssertionError(node)


def _row(df: pd.DataFrame, i: int) -> dict:
    out = {}
    for column in df.columns:
        value = df[column].iloc[i]
        out[column] = None if pd.isna(value) else (value.to_pydatetime() if column == "d" else value.item()
                                                    if hasattr(value, "item") else value)
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_bool(3))
def test_evaluator_agrees_with_the_reference_and_touches_nothing(frame, text):
    global _events
    tree = parse_tree(text)
    assert not ex.check(tree, COLUMNS, COLUMNS), text
    expression = ir.Expression(text=text, tree=tree)
    rows_where(expression, frame, {}, STEP)      # warm: pandas imports what it needs once
    _events = []
    try:
        mask = rows_where(expression, frame, {}, STEP)
    finally:
        seen, _events = _events, None
    assert not seen, f"{text}: {seen}"
    expected = [bool(reference(tree, _row(frame, i))) for i in range(len(frame))]
    assert list(mask) == expected, text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_bool(2))
def test_arrow_filter_keeps_the_same_rows(frame, text, tmp_path_factory):
    import pyarrow as pa
    import pyarrow.dataset as ds

    tree = parse_tree(text)
    arrow = to_arrow_filter(tree)
    if arrow is None:
        return          # functions Arrow does not share the meaning of: the rows are filtered after reading
    table = pa.Table.from_pandas(frame, preserve_index=False)
    kept = ds.dataset(table).to_table(filter=arrow).to_pandas()
    mask = rows_where(ir.Expression(text=text, tree=tree), frame, {}, STEP)
    assert kept.reset_index(drop=True).equals(frame[mask].reset_index(drop=True)), text


PLAIN = ["a > 1 and (s in ['x'] or isna(d))", "a != 1.5", "not (a < 0)", "s != 'x'", "b not in [1, 2]",
         "d >= date(\"2008-06-30\") | notna(a)", "between(a, -1, 2) or isin(s, ['Gentoo'])", "a == a"]


@pytest.mark.parametrize("text", PLAIN)
def test_arrow_translation_of_plain_comparisons_keeps_the_same_rows(frame, text):
    import pyarrow as pa
    import pyarrow.dataset as ds

    tree = parse_tree(text)
    arrow = to_arrow_filter(tree)
    assert arrow is not None
    kept = ds.dataset(pa.Table.from_pandas(frame, preserve_index=False)).to_table(filter=arrow).to_pandas()
    mask = rows_where(ir.Expression(text=text, tree=tree), frame, {}, STEP)
    assert kept.reset_index(drop=True).equals(frame[mask].reset_index(drop=True))


def test_functions_arrow_does_not_share_do_not_translate():
    assert to_arrow_filter(parse_tree("lower(s) == 'x'")) is None
    assert to_arrow_filter(parse_tree("a + 1 > 2")) is None
