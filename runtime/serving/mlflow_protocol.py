"""MLflow's scoring protocol (`POST /invocations`), as `mlflow models serve` speaks it.

JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs` (and an
optional `params`, ignored: a scikit-learn model takes none), or `text/csv` with a header row.
Any other content type is a 415. The answer is `{"predictions": [...]}`, plus, for a classifier
with `predict_proba`, `"probabilities": [{class: p, ...}, ...]` (a key MLflow clients ignore).
Values are parsed as JSON or CSV text only: nothing in a body is unpickled or evaluated.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from .inputs import Columns, InputError, describe

KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(body: bytes, content_type: str | None) -> Columns:
    kind = media_type(content_type)
    if kind in CSV_TYPES:
        return parse_csv(body)
    if kind in JSON_TYPES:
        return parse_json(body)
    raise InputError("unsupported content type", status=415, expected="application/json or text/csv",
                     found=kind or "no Content-Type header")


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:   # JSONDecodeError, and an integer of 5,000 digits
        raise InputError("the body is not valid JSON", expected="a JSON document",
                         found=f"{type(exc).__name__}: {str(exc)[:200]}") from None
    except RecursionError:
        raise InputError("the body is not valid JSON", expected="a JSON document nested less deeply",
                         found="nesting too deep to read") from None


def unique_names(names: list[str], what: str) -> list[str]:
    """Column names, each once: `{"columns": ["a", "a"]}` would give one column two values per row."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{what}: column {name!r} is given twice", column=name, expected="each column once",
                             found=f"{name!r} twice")
        seen.add(name)
    return names


def parse_json(body: bytes) -> Columns:
    document = load_json(body)
    if not isinstance(document, dict):
        raise InputError("the body must be a JSON object", expected=f"an object with one of: {', '.join(KEYS)}",
                         found=describe(document))
    given = [k for k in KEYS if k in document]
    if len(given) != 1:
        raise InputError(f"the body must hold exactly one of: {', '.join(KEYS)}",
                         expected=f"exactly one of: {', '.join(KEYS)}",
                         found=", ".join(given) if given else f"keys: {', '.join(sorted(document)) or 'none'}")
    key = given[0]
    value = document[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "dataframe_records":
        return Columns.from_records(value, key)
    if isinstance(value, dict):          # instances / inputs in columnar form
        return Columns.from_mapping(value, key)
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        return Columns.from_records(value, key)
    raise InputError(f"{key} must name its columns", expected="a list of objects or an object of columns",
                     found="a list of unnamed values" if isinstance(value, list) else describe(value))


def _split(value: Any) -> Columns:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or not isinstance(
            value.get("data"), list):
        raise InputError("dataframe_split must hold 'columns' and 'data' lists",
                         expected='{"columns": [...], "data": [[...], ...]}', found=describe(value))
    names = unique_names([str(c) for c in value["columns"]], "dataframe_split")
    values: dict[str, list[Any]] = {n: [] for n in names}
    for i, row in enumerate(value["data"]):
        if not isinstance(row, list) or len(row) != len(names):
            raise InputError(f"dataframe_split: row {i} does not have one value per column",
                             expected=f"{len(names)} values", found=describe(row) if not isinstance(row, list)
                             else f"{len(row)} values")
        for name, cell in zip(names, row):
            values[name].append(cell)
    return Columns(values, len(value["data"]))


def parse_csv(body: bytes) -> Columns:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError("the CSV body is not UTF-8 text", expected="UTF-8 CSV with a header row",
                         found=str(exc)) from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InputError("the body is not valid CSV", expected="CSV with a header row", found=str(exc)) from None
    rows = [r for r in rows if r]
    if not rows:
        raise InputError("the CSV body is empty", expected="a header row and at least one row", found="nothing")
    header, data = unique_names(rows[0], "the CSV header"), rows[1:]
    values: dict[str, list[Any]] = {name: [] for name in header}
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise InputError(f"CSV row {i + 1} does not have one value per column", expected=f"{len(header)} values",
                             found=f"{len(row)} values")
        for name, cell in zip(header, row):
            values[name].append(cell)
    return Columns(values, len(data), text=True)


def response(predictions: list[Any], probabilities: list[dict[str, float]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"predictions": predictions}
    if probabilities is not None:
        body["probabilities"] = probabilities
    return body
