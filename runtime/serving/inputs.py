"""Requests checked against the model's features before anything reaches the model.

A protocol adapter turns a body into `Columns` (column name -> the raw values, in row order); this
module checks those values against the model's features (`check_columns` -> `Checked`: numbers as
float64, text as objects with NaN for missing, booleans as bool) and builds one DataFrame for the
requests of a batch (`batch_frame`), not one per request. Every refusal is an
`InputError` naming the column, what was expected and what was found:

    {"dataframe_records": [{"bill_length_mm": "long"}]}   # 400: column 'bill_length_mm' expects a number
    {"dataframe_records": [{"island": "Biscoe"}]}          # 400: missing column 'bill_length_mm'

Extra columns are ignored, as `mlflow models serve` does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .model import LoadedModel

_TRUE_TEXT = {"true": True, "1": True, "false": False, "0": False}


@dataclass
class InputError(Exception):
    message: str
    status: int = 400
    column: str | None = None
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in {"message": self.message, "column": self.column, "expected": self.expected,
                                  "found": self.found}.items() if v is not None}


@dataclass
class Columns:
    """Raw request values by column. `text` when every value is text that still needs parsing (CSV)."""
    values: dict[str, list[Any]]
    rows: int
    text: bool = False
    names: list[str] = field(default_factory=list)

    @classmethod
    def from_records(cls, records: Any, what: str) -> Columns:
        if not isinstance(records, list):
            raise InputError(f"{what} must be a list of rows", expected="a JSON list of objects",
                             found=describe(records))
        values: dict[str, list[Any]] = {}
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise InputError(f"{what}: row {i} is not an object naming its columns",
                                 expected='an object like {"column": value}', found=describe(record))
            for key, value in record.items():
                values.setdefault(str(key), [None] * i).append(value)
            for column in values.values():   # a row without a key has no value there
                if len(column) < i + 1:
                    column.append(None)
        return cls(values, len(records))

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], what: str) -> Columns:
        """Column name -> list of values (or one value: a single row)."""
        values = {str(k): (v if isinstance(v, list) else [v]) for k, v in mapping.items()}
        lengths = {len(v) for v in values.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}: {len(v)}" for k, v in values.items())
            raise InputError(f"{what}: the columns have different lengths", expected="one value per row in "
                             "every column", found=sizes)
        return cls(values, lengths.pop() if lengths else 0)


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(column: str, row: int, value: Any, text: bool) -> float:
    if text and isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            parsed = None
        if parsed is None or math.isinf(parsed):
            raise InputError(f"column {column!r} expects a number (row {row})", column=column,
                             expected="a finite number", found=describe(value))
        return parsed
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"column {column!r} expects a number (row {row})", column=column,
                         expected="a finite number", found=describe(value))
    try:
        number = float(value)
    except OverflowError:          # an integer beyond float range, e.g. 10**400
        number = math.inf
    if math.isinf(number):
        raise InputError(f"column {column!r} expects a finite number (row {row})", column=column,
                         expected="a finite number", found=describe(value))
    return number


def _text(column: str, row: int, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"column {column!r} expects text (row {row})", column=column, expected="text",
                         found=describe(value))
    return value


def _boolean(column: str, row: int, value: Any, text: bool) -> bool:
    if text and isinstance(value, str) and value.strip().lower() in _TRUE_TEXT:
        return _TRUE_TEXT[value.strip().lower()]
    if not isinstance(value, bool):
        raise InputError(f"column {column!r} expects true or false (row {row})", column=column,
                         expected="a boolean", found=describe(value))
    return value


def _any(column: str, row: int, value: Any, text: bool) -> Any:
    if isinstance(value, (list, dict)):
        raise InputError(f"column {column!r} expects one value per row (row {row})", column=column,
                         expected="a number, text or a boolean", found=describe(value))
    if isinstance(value, float) and math.isinf(value):
        raise InputError(f"column {column!r} expects a finite number (row {row})", column=column,
                         expected="a finite number", found=describe(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        raise InputError(f"column {column!r} holds a number too large (row {row})", column=column,
                         expected="a number within 64 bits", found=f"a number of {len(str(abs(value)))} digits")
    return value


@dataclass
class Checked:
    """One request's rows after the checks: a numpy array per model feature (float64 for numbers,
    objects with NaN for missing text), and the number of missing values per feature. No
    DataFrame is built per request: the batch builds one for all its requests (`batch_frame`)."""
    values: dict[str, Any]
    rows: int
    missing: dict[str, int]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def check_columns(model: LoadedModel, columns: Columns) -> Checked:
    """The request's values checked against the model's features; raises InputError."""
    import numpy as np

    if columns.rows == 0:
        raise InputError("the request holds no rows", expected="at least one row", found="0 rows")
    absent = [f.name for f in model.features if f.name not in columns.values]
    if absent:
        given = ", ".join(sorted(columns.values)[:20]) or "none"
        raise InputError(f"missing column {absent[0]!r}" + (f" (and {len(absent) - 1} more)" if len(absent) > 1
                                                           else ""),
                         column=absent[0], expected=f"the model's features: {', '.join(model.feature_names)}",
                         found=f"columns: {given}")
    data: dict[str, Any] = {}
    missing: dict[str, int] = {}
    for feature in model.features:
        raw = columns.values[feature.name]
        clean: list[Any] = []
        gaps = 0
        for row, value in enumerate(raw):
            if _is_missing(value) or (columns.text and value == ""):
                gaps += 1
                clean.append(np.nan)
            elif feature.kind == "number":
                clean.append(_number(feature.name, row, value, columns.text))
            elif feature.kind == "text":
                clean.append(_text(feature.name, row, value))
            elif feature.kind == "boolean":
                clean.append(_boolean(feature.name, row, value, columns.text))
            else:
                clean.append(_any(feature.name, row, value, columns.text))
        missing[feature.name] = gaps
        if feature.kind == "number":
            data[feature.name] = np.array(clean, dtype="float64")
        elif feature.kind == "boolean" and not gaps:
            data[feature.name] = np.array(clean, dtype=bool)
        else:
            column = np.empty(len(clean), dtype=object)
            column[:] = clean
            data[feature.name] = column
    return Checked(data, columns.rows, missing)


def batch_frame(model: LoadedModel, batch: list[Checked]) -> pd.DataFrame:
    """One DataFrame of the model's features over the requests of a batch, in order."""
    import numpy as np
    import pandas as pd

    if len(batch) == 1:
        data = batch[0].values
    else:
        data = {f.name: np.concatenate([checked[f.name] for checked in batch]) for f in model.features}
    return pd.DataFrame(data, columns=model.feature_names)
