"""A source's column types: the declared ones, strict or lenient, and a warning for an undeclared
column that is mostly numbers.

pandas reads a CSV column as numbers only when every value parses; one slip ("ninety" among 406
horsepower figures) leaves the whole column text, which a model then one-hot encodes into a level
per distinct number, silently. Per column, the spec chooses:

    source cars { csv = "cars.csv"  types { Horsepower: float } }   # "ninety" fails the step
    source cars { csv = "cars.csv"  coerce = [Horsepower] }         # it becomes missing, counted
    source cars { csv = "cars.csv" }                                # the column stays text, warned of

`coerce` converts to the column's declared type, or to numbers (float) when none is declared.

An undeclared text column is "mostly numbers" when at least MOSTLY_NUMBERS percent of its
non-missing values parse as numbers, and some do not. At 90%, a few slips in a numeric column are
caught, while a column of codes that only partly look like numbers (sizes "8", "10", "S", "M")
stays quiet; a wrong guess costs one warning, never a changed dataset.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from .core import require_columns, step_error

if TYPE_CHECKING:
    import pandas as pd

MOSTLY_NUMBERS = 90  # percent; whole numbers keep the comparison exact (9 of 10 is 90%)
EXAMPLES = 3          # values shown in a warning or note
SAMPLE = 1000         # values tried first: a column that is mostly text is dismissed without parsing it all

# declared type -> what a coerced column must hold, for messages
TYPE_WORDS = {"int": "whole numbers", "float": "numbers", "str": "text", "bool": "true/false values",
              "category": "categories", "datetime": "dates or timestamps"}
BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def read_types(step: ir.Source, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The data with its declared and coerced columns converted, and what the step reports:
    `notes` (values `coerce` turned into missing ones), `coerced` ({column: count}, when the spec
    has `coerce`) and `warnings` (undeclared columns that are mostly numbers)."""
    require_columns(step, list(df.columns), list(step.types), role="typed column",
                    span=step.spans.get("types"))
    for i, column in enumerate(step.coerce):
        require_columns(step, list(df.columns), [column], role="coerced column",
                        span=step.spans.get(f"coerce.{i}") or step.spans.get("coerce"))
    wanted = {**{column: "float" for column in step.coerce}, **step.types}
    report: dict[str, Any] = {}
    if wanted:
        df = df.copy(deep=False)   # the converted columns replace columns of this frame only
    for column, kind in wanted.items():
        original = df[column]
        converted = convert(step, column, original, kind)
        bad = original[converted.isna() & original.notna()]
        if column in step.coerce:
            report.setdefault("coerced", {})[column] = len(bad)
            if len(bad):
                report.setdefault("notes", []).append(
                    f"column {column!r}: {len(bad)} value(s) that are not {TYPE_WORDS[kind]} became missing "
                    f"(coerce), e.g. {examples(bad)}")
        elif len(bad):
            raise step_error(step, f"column {column!r} cannot be read as {kind}: "
                             f"{len(bad)} value(s) do not convert", "types", span=step.spans.get(f"types.{column}"),
                             expected=f"{TYPE_WORDS[kind]} (or `coerce = [{column}]`: such values become missing)",
                             found=examples(bad, limit=5))
        df[column] = converted
    warnings = [mostly_numbers(column, df[column]) for column in df.columns if column not in wanted]
    if any(warnings):
        report["warnings"] = [w for w in warnings if w]
    return df, report


def convert(step: ir.Source, column: str, values: pd.Series, kind: str) -> pd.Series:
    """`values` as `kind`; what does not convert becomes missing (the caller decides if that fails)."""
    import pandas as pd

    try:
        if kind in ("int", "float"):
            converted = pd.to_numeric(values, errors="coerce")
            if kind == "int":
                whole = converted.isna() | (converted % 1 == 0)
                converted = converted.where(whole).astype("Int64")
            return converted
        if kind == "datetime":
            return pd.to_datetime(values, errors="coerce")
        if kind == "bool":
            return values.map(lambda v: v if isinstance(v, bool) or pd.isna(v)
                              else BOOL_WORDS.get(str(v).strip().lower())).astype("boolean")
        if kind == "category":
            return values.astype("category")
        return values.astype("str").where(values.notna())
    except (TypeError, ValueError) as exc:
        raise step_error(step, f"column {column!r} cannot be read as {kind}", "types",
                         span=step.spans.get(f"types.{column}"), expected=TYPE_WORDS[kind], found=str(exc)) from None


def mostly_numbers(column: str, values: pd.Series) -> str | None:
    """The warning for a text column whose values are mostly numbers, else None."""
    import pandas as pd
    from pandas.api import types as t

    if not (values.dtype == object or t.is_string_dtype(values)):
        return None
    present = values.dropna()
    try:
        sample = pd.to_numeric(present.iloc[:SAMPLE], errors="coerce")
        if sample.empty or 100 * sample.notna().sum() < MOSTLY_NUMBERS / 2 * len(sample):
            return None
        parsed = pd.to_numeric(present, errors="coerce")
    except (TypeError, ValueError):   # values that are not scalars (lists, dicts from Parquet)
        return None
    bad = present[parsed.isna()]
    if bad.empty or 100 * (len(present) - len(bad)) < MOSTLY_NUMBERS * len(present):
        return None
    return (f"column {column!r} is mostly numbers, but {len(bad)} of {len(present)} values are not, "
            f"e.g. {examples(bad)}: it stays text, which a model takes as categories. Declare "
            f"`types {{ {column}: float }}` to fail on such values, or `coerce = [{column}]` to read "
            "them as missing")


def examples(values: pd.Series, limit: int = EXAMPLES) -> str:
    distinct = list(dict.fromkeys(values.tolist()))
    shown = ", ".join(repr(v) for v in distinct[:limit])
    return shown + (f" (and {len(distinct) - limit} more)" if len(distinct) > limit else "")
