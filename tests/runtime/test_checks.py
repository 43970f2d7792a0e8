"""Check stage with pandera on the penguins example: stop, warn, and the report's contents."""
from __future__ import annotations

import pytest
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression
from mlopsc.runtime import StepError, StepFailed, artifacts, execute


def span(line: int) -> ir.Span:
    return ir.Span(file="spec.mlops", line=line, col=5, end_line=line, end_col=40)


@pytest.fixture
def data_uri(ctx, penguins) -> str:
    uri = f"{ctx.artifact_root}/penguins/data.parquet"
    artifacts.write_parquet(penguins[penguins.year < 2009], uri)
    return uri


def check(rules, on_fail="stop") -> ir.Check:
    return ir.Check(name="quality", data=ir.Ref(step="penguins"), rules=tuple(rules), on_fail=on_fail,
                    span=span(14))


SPEC_RULES = [  # the example spec's rules: they hold on the example data
    ir.RowsRule(op=">=", value=200, span=span(15)),
    ir.ColumnRule(column="species", allowed=("Adelie", "Chinstrap", "Gentoo"), span=span(16)),
    ir.ColumnRule(column="bill_length_mm", dtype="float", min=25, max=70, max_null_fraction=0.02,
                  span=span(17)),
    ir.ColumnRule(column="sex", dtype="category", nullable=True, span=span(18)),
]


def test_example_rules_pass(ctx, out, data_uri):
    step = check(SPEC_RULES)
    result = execute(step, {"data": data_uri}, out(step), ctx)
    assert result["status"] == "ok" and result["passed"] and result["failures"] == []
    report = artifacts.read_json(result["outputs"]["report"]["uri"])
    assert report["passed"] and report["failed"] == 0 and report["rows"] == 224
    assert report["data_sha256"] == artifacts.sha256_of(data_uri)
    assert all(e["passed"] for e in report["expectations"])
    assert "column bill_length_mm between 25 and 70" in [e["expectation"] for e in report["expectations"]]


FAILING_RULES = [
    ir.RowsRule(op=">=", value=1000, span=span(20)),
    ir.ColumnRule(column="species", allowed=("Adelie", "Gentoo"), span=span(21)),
    ir.ColumnRule(column="bill_length_mm", min=40, max=70, max_null_fraction=0.001, span=span(22)),
    ir.ColumnRule(column="sex", nullable=False, span=span(23)),
    ir.ColumnRule(column="island", unique=True, regex="^(Biscoe|Dream)$", span=span(24)),
    ir.ColumnRule(column="year", dtype="str", span=span(25)),
    ir.ColumnRule(column="wingspan", min=1, span=span(26)),
    ir.ExpressionRule(expression=expression("bill_length_mm > 3 * bill_depth_mm"), span=span(27)),
]


def failing_by_text(report) -> dict[str, dict]:
    return {e["expectation"]: e for e in report["expectations"] if e["passed"] is False}


def test_stop_writes_the_report_then_raises(ctx, out, data_uri, penguins):
    step = check(FAILING_RULES)
    outputs = out(step)
    with pytest.raises(StepFailed) as info:
        execute(step, {"data": data_uri}, outputs, ctx)
    assert info.value.reason == "check" and "step quality (spec.mlops:14:5)" in str(info.value)
    report = artifacts.read_json(outputs["report"])   # written before the verdict
    assert info.value.result["outputs"]["report"]["uri"] == outputs["report"]
    failed = failing_by_text(report)
    data = penguins[penguins.year < 2009]
    chinstraps = int((data.species == "Chinstrap").sum())
    assert failed["rows >= 1000"]["examples"] == ["224 rows"]
    assert failed["column species in ['Adelie', 'Gentoo']"]["failures"] == chinstraps
    assert failed["column species in ['Adelie', 'Gentoo']"]["examples"] == ["Chinstrap"]
    short = int((data.bill_length_mm < 40).sum())
    assert failed["column bill_length_mm between 40 and 70"]["failures"] == short
    assert all(v < 40 for v in failed["column bill_length_mm between 40 and 70"]["examples"])
    assert failed["column bill_length_mm nulls <= 0.001"]["examples"][0].startswith("null fraction")
    assert failed["column sex not nullable"]["failures"] == int(data.sex.isna().sum())
    assert failed["column island unique"]["failures"] == len(data)
    assert failed["column island matches '^(Biscoe|Dream)$'"]["examples"] == ["Torgersen"]
    assert failed["column year is str"]["examples"] == ["dtype int64"]
    assert "column wingspan exists" in failed
    (unchecked,) = [e for e in report["expectations"] if e["expectation"] == "column wingspan >= 1"]
    assert unchecked["passed"] is None and "column is missing" in unchecked["note"]
    expr = failed["expect 'bill_length_mm > 3 * bill_depth_mm'"]
    assert expr["failures"] == int((~(data.bill_length_mm > 3 * data.bill_depth_mm)).sum())
    assert expr["line"] == 27 and len(expr["examples"]) == 5
    assert report["failed"] == len(failed) == 10


def test_warn_continues_with_status_warn(ctx, out, data_uri):
    step = check(FAILING_RULES[:2], on_fail="warn")
    result = execute(step, {"data": data_uri}, out(step), ctx)
    assert result["status"] == "warn" and not result["passed"]
    failed = [f["expectation"] for f in result["failures"]]
    assert failed == ["rows >= 1000", "column species in ['Adelie', 'Gentoo']"]
    assert artifacts.exists(result["outputs"]["report"]["uri"])


def test_int_accepts_whole_floats_with_missing_values(ctx, out, data_uri):
    # body_mass_g has missing values, so the CSV reader made it float; its values are whole.
    step = check([ir.ColumnRule(column="body_mass_g", dtype="int", min=2000)])
    assert execute(step, {"data": data_uri}, out(step), ctx)["passed"]


def test_bad_expression_is_a_step_error_without_report(ctx, out, data_uri):
    step = check([ir.ExpressionRule(expression=expression("bill_lenght > 3"), span=span(30))])
    outputs = out(step)
    with pytest.raises(StepError) as info:
        execute(step, {"data": data_uri}, outputs, ctx)
    assert not isinstance(info.value, StepFailed)
    assert "spec.mlops:30:5" in str(info.value) and "bill_lenght > 3" in str(info.value)
    assert not artifacts.exists(outputs["report"])


def test_report_on_memory(ctx, penguins):
    uri = "memory://checks-test/data.parquet"
    artifacts.write_parquet(penguins.head(50), uri)
    step = check([ir.RowsRule(op="==", value=50)])
    result = execute(step, {"data": uri}, {"report": "memory://checks-test/report.json"}, ctx)
    assert result["passed"] and artifacts.read_json("memory://checks-test/report.json")["rows"] == 50


def test_counts_and_examples_of_rules_failing_on_most_rows():
    """pandera reports one case per failed check; the counts and examples are those of every
    failing value, found again: the same numbers a case per value gave, computed with pandas here."""
    import numpy as np
    import pandas as pd
    from mlopsc.runtime.checks import validate

    rng = np.random.default_rng(0)
    rows = 2_000
    frame = pd.DataFrame({"x": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(0, 2, rows)),
                          "tag": rng.choice(["a", "b", "c", "d"], rows),
                          "code": [f"c{i % 50}" for i in range(rows)]})
    rules = [ir.ColumnRule(column="x", min=-1, max=1, span=span(3)),
             ir.ColumnRule(column="tag", allowed=("a", "b"), span=span(4)),
             ir.ColumnRule(column="code", regex="^c[0-9]$", unique=True, span=span(5)),
             ir.ColumnRule(column="x", nullable=False, span=span(6)),
             ir.ExpressionRule(expression=expression("x < 0.5"), span=span(7))]
    found = {e["expectation"]: e for e in validate(check(rules), frame)}

    def expected(failing: pd.Series) -> tuple[int, list]:
        return int(failing.sum()), list(dict.fromkeys(frame.loc[failing, failing.name]))[:5]

    x, tag, code = frame["x"], frame["tag"], frame["code"]
    for text, failing in [("column x between -1 and 1", x.notna() & ((x < -1) | (x > 1))),
                          ("column tag in ['a', 'b']", ~tag.isin(["a", "b"])),
                          ("column code matches '^c[0-9]$'", ~code.str.match("^c[0-9]$")),
                          ("column code unique", code.duplicated(keep=False))]:
        count, examples = expected(failing)
        assert (found[text]["failures"], found[text]["examples"]) == (count, examples), text
    assert found["column x not nullable"]["failures"] == int(x.isna().sum())
    rows_failing = frame.index[~(x < 0.5)]   # a missing x makes the expression false: the row fails
    assert found["expect 'x < 0.5'"]["failures"] == len(rows_failing)
    assert found["expect 'x < 0.5'"]["examples"] == [f"row {i}" for i in rows_failing[:5]]
