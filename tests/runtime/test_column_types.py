"""A source's column types (runtime/column_types.py) on tests/data/cars.csv, whose Horsepower column
holds 38 numbers, one "ninety" and one missing value: undeclared, it stays text with a warning;
declared, "ninety" fails the step; declared and coerced, or only coerced, it becomes missing."""
from __future__ import annotations

import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import StepError, artifacts, execute, tracking
from mlopsc.runtime.column_types import mostly_numbers


def cars(cars_csv, **kw) -> ir.Source:
    return ir.Source(**{"name": "cars", "format": "csv", "path": str(cars_csv), **kw})


def data(result) -> pd.DataFrame:
    return artifacts.read_parquet(result["outputs"]["data"]["uri"])


def test_an_undeclared_column_that_is_mostly_numbers_is_a_warning(ctx, out, cars_csv):
    step = cars(cars_csv)
    result = execute(step, {}, out(step), ctx)
    (warning,) = result["warnings"]          # one column only: Name, Year and Origin are text
    assert warning.startswith("column 'Horsepower' is mostly numbers, but 1 of 39 values are not, e.g. 'ninety'")
    assert "`types { Horsepower: float }`" in warning and "`coerce = [Horsepower]`" in warning
    assert result["status"] == "ok" and "coerced" not in result and "notes" not in result
    assert not pd.api.types.is_numeric_dtype(data(result)["Horsepower"])   # the data is not changed
    run = tracking.client(ctx).get_run(result["mlflow_run_id"])
    assert run.data.tags["mlopsc.warnings"] == warning


def test_a_declared_type_fails_on_a_value_that_does_not_parse_and_names_coerce(ctx, out, cars_csv):
    span = ir.Span(file="cars.mlops", line=3, col=13, end_line=3, end_col=18)
    step = cars(cars_csv, types={"Horsepower": "float"}, spans={"types.Horsepower": span})
    with pytest.raises(StepError) as failed:
        execute(step, {}, out(step), ctx)
    assert failed.value.span == span
    assert "column 'Horsepower' cannot be read as float: 1 value(s) do not convert" in str(failed.value)
    assert "`coerce = [Horsepower]`" in str(failed.value) and "'ninety'" in str(failed.value)


def test_coerce_turns_what_does_not_parse_into_missing_values_and_counts_them(ctx, out, cars_csv):
    step = cars(cars_csv, coerce=("Horsepower",))
    result = execute(step, {}, out(step), ctx)
    horsepower = data(result)["Horsepower"]
    assert horsepower.dtype == "float64" and horsepower.isna().sum() == 2     # "ninety" and the gap
    assert result["coerced"] == {"Horsepower": 1} and "warnings" not in result
    assert result["notes"] == [("column 'Horsepower': 1 value(s) that are not numbers became missing "
                               "(coerce), e.g. 'ninety'")]


def test_coerce_converts_to_the_declared_type(ctx, out, cars_csv):
    step = cars(cars_csv, types={"Horsepower": "int", "Cylinders": "int"}, coerce=("Horsepower", "Cylinders"))
    result = execute(step, {}, out(step), ctx)
    df = data(result)
    assert df["Horsepower"].dtype == "Int64" and df["Cylinders"].dtype == "Int64"
    assert result["coerced"] == {"Horsepower": 1, "Cylinders": 0} and len(result["notes"]) == 1


def test_coerce_names_an_unknown_column(ctx, out, cars_csv):
    step = cars(cars_csv, coerce=("Horsepowr",))
    with pytest.raises(StepError, match="coerced column 'Horsepowr' is not in the data.*did you mean Horsepower"):
        execute(step, {}, out(step), ctx)


@pytest.mark.parametrize(("values", "warned"), [
    (["1", "2", "3", "4", "5", "6", "7", "8", "9", "ten"], True),     # 90% numbers
    (["1", "2", "3", "4", "5", "6", "7", "8", "nine", "ten"], False),  # 80%: text is meant
    (["8", "10", "S", "M", "L"], False),                             # sizes
    (["2015-01-01", "2015-02-01"], False),                           # dates are not numbers
    (["1", "2", None, "x"] + ["3"] * 30, True),                      # missing values do not count
])
def test_what_counts_as_mostly_numbers(values, warned):
    warning = mostly_numbers("c", pd.Series(values, dtype=object))
    assert (warning is not None) == warned, warning


def test_columns_of_other_types_are_never_sniffed():
    assert mostly_numbers("c", pd.Series([1.0, 2.0])) is None
    assert mostly_numbers("c", pd.Series(["1", "2", "x"] * 10, dtype="category")) is None
    assert mostly_numbers("c", pd.Series([[1], [2], [3]])) is None          # lists, from Parquet
