"""A Parquet source applies its filter while reading when all of it translates to a pyarrow filter,
and reads only the columns it keeps: the dataset is the one the evaluator would have made."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression
from mlopsc.runtime import RunContext, StepError, artifacts, sources
from mlopsc.runtime.expressions import rows_where


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    """Nulls in every column and several row groups (the read keeps their order)."""
    rng = np.random.default_rng(3)
    n = 60
    frame = pd.DataFrame({
        "a": np.where(rng.random(n) < 0.15, np.nan, rng.normal(0, 2, n).round(1)),
        "b": rng.integers(0, 5, n),
        "s": pd.Series(rng.choice(["x", "y", "Gentoo", None], n), dtype="str"),
        "d": pd.to_datetime("2008-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "extra": rng.random(n)})
    frame.loc[[4, 9], "d"] = pd.NaT
    path = tmp_path_factory.mktemp("pushdown") / "t.parquet"
    frame.to_parquet(path, row_group_size=7)
    return str(path)


@pytest.fixture
def ctx(tmp_path) -> RunContext:
    return RunContext(pipeline="p", run_id="r", spec_path=str(tmp_path / "p.mlops"), params={"limit": 1.5})


def evaluated(step: ir.Source, path: str, ctx: RunContext) -> pd.DataFrame:
    """What the evaluator keeps of the whole file, as the source made it before pushdown."""
    full = pd.read_parquet(path)
    kept = full[rows_where(step.filter, full, ctx.params, step)]
    return (kept[list(step.columns)] if step.columns else kept).reset_index(drop=True)


@pytest.mark.parametrize("text", [
    "a > 1 and (s in ['x'] or isna(d))", "a != 1.5", "not (a < 0)", "s != 'x'", "b not in [1, 2]",
    "d >= date(\"2008-06-30\") | notna(a)", "between(a, -1, 2) or isin(s, ['Gentoo'])", "a <= params.limit"])
def test_a_pushed_down_filter_keeps_the_evaluators_rows(table, ctx, text):
    step = ir.Source(name="p", format="parquet", path=table, filter=expression(text))
    assert sources._read_parquet(step, table, ctx)[1]        # pushed down
    data, _ = sources.load(step, ctx)
    expected = evaluated(step, table, ctx)
    assert data.equals(expected)
    assert artifacts.dataset_sha256(data) == artifacts.dataset_sha256(expected)


def test_only_the_kept_columns_are_read(table, ctx):
    step = ir.Source(name="p", format="parquet", path=table, filter=expression("s == 'x'"), columns=("b", "a"))
    read, pushed = sources._read_parquet(step, table, ctx)
    assert pushed and list(read.columns) == ["b", "a"]     # the filter's column was not read
    data, _ = sources.load(step, ctx)
    assert data.equals(evaluated(step, table, ctx))


def test_what_arrow_cannot_apply_is_left_to_the_evaluator(table, ctx):
    # A function Arrow does not share the meaning of: read whole, filtered by the evaluator.
    step = ir.Source(name="p", format="parquet", path=table, filter=expression("lower(s) == 'gentoo'"),
                     columns=("a",))
    assert sources._read_parquet(step, table, ctx)[1] is False
    assert sources.load(step, ctx)[0].equals(evaluated(step, table, ctx))
    # Text compared with a number: Arrow refuses, and the evaluator's error names the filter.
    step = ir.Source(name="p", format="parquet", path=table, filter=expression("s > 1"))
    with pytest.raises(StepError, match="the filter cannot be evaluated"):
        sources.load(step, ctx)


def test_a_pushed_filter_that_keeps_nothing_says_so(table, ctx):
    step = ir.Source(name="p", format="parquet", path=table, filter=expression("b > 100"))
    with pytest.raises(StepError, match="no row matches the filter"):
        sources.load(step, ctx)
