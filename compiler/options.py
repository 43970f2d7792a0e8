"""What a written spec holds before it becomes IR, and what each step kind accepts.

The grammar is generic (`KIND NAME { key = value ... }`), so the knowledge of which keys a step
kind has, and what shape each key's value must have, lives here as data: `STEP_OPTIONS` maps a
kind's keys to converters, small functions from a written `Value` to the field's value that raise
`Bad` with a message in words when the shape is wrong. transformer.py walks the tree with them.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from . import ir

STEP_KINDS = tuple(ir.STEP_KINDS)
# `description = "..."` and `schedule = "..."` at the pipeline's level (beside params, allow and steps).
PIPELINE_OPTIONS = ("description", "schedule")
# Options written right after `tune grid { ... }` that belong to the tune, as long as they follow
# it without another option in between (`tune grid {...} cv = 5 metric = f1  seed = 3`).
TUNE_KEYS = ("cv", "metric", "n_iter", "seed")

# ---------------------------------------------------------------- what the tree becomes


@dataclass(frozen=True)
class Value:
    """A value as written: kind is str | num | name | list | call | ctor."""

    kind: str
    data: Any
    span: ir.Span

    def describe(self) -> str:
        if self.kind == "name":
            return f"'{'.'.join(self.data)}'"
        if self.kind == "num":
            return f"the number {self.data}"
        if self.kind == "call":
            return f"{self.data[0]}(...)"
        return {"str": "a string", "list": "a list", "ctor": "a constructor `Name { ... }`"}[self.kind]


@dataclass(frozen=True)
class Option:
    key: str
    value: Value
    key_span: ir.Span
    span: ir.Span


@dataclass(frozen=True)
class Block:
    key: str
    entries: tuple
    key_span: ir.Span
    span: ir.Span


@dataclass(frozen=True)
class Typed:
    """`name: type = default "description"` (params) or `column: type` (source types)."""

    name: str
    type: str
    type_span: ir.Span
    default: Value | None
    description: str | None
    span: ir.Span


@dataclass(frozen=True)
class Rule:
    """A statement with its own shape (`rows >= 200`, `require ...`, `tune grid {...}`)."""

    keyword: str
    node: Any            # the IR node, or None when it could not be built (problem recorded)
    span: ir.Span
    entries: tuple = ()  # tune only: the search space entries


class Bad(Exception):
    """A written value does not have the shape its field needs."""

    def __init__(self, message: str, hint: str | None = None, span: ir.Span | None = None, code: str = "E350"):
        super().__init__(message)
        self.message, self.hint, self.span, self.code = message, hint, span, code


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if match:
        return f"did you mean '{match[0]}'?"
    return "expected one of " + ", ".join(sorted(candidates)) if 0 < len(candidates) <= 12 else None


# ---------------------------------------------------------------- value converters

_TRUE, _FALSE = ("true", "on", "yes"), ("false", "off", "no")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def param_ref(v: Value) -> ir.ParamRef | None:
    if v.kind == "name" and v.data[0] == "params":
        if len(v.data) != 2:
            raise Bad(f"expected params.NAME, got {v.describe()}")
        return ir.ParamRef(name=v.data[1], span=v.span)
    return None


def word(v: Value) -> str:
    """A bare name or a string: a column, a metric, one of a fixed set of choices."""
    if v.kind == "name" and len(v.data) == 1:
        return v.data[0]
    if v.kind == "str":
        return v.data
    raise Bad(f"expected a name, got {v.describe()}")


def text(v: Value) -> str:
    if v.kind == "str":
        return v.data
    if v.kind == "name":
        return ".".join(v.data)
    raise Bad(f"expected a string, got {v.describe()}")


def quoted(v: Value) -> str:
    if v.kind == "str":
        return v.data
    raise Bad(f"expected a string in double quotes, got {v.describe()}")


def expression(v: Value) -> ir.Expression:
    """`filter = "year < 2009"`: the string parsed into an expression tree (expression_parser.py)."""
    from .expression_parser import parse_expression

    if v.kind != "str":
        raise Bad(f"expected an expression in double quotes, got {v.describe()}",
                  'expressions are strings: filter = "year < 2009"')
    built, problems = parse_expression(v.data, v.span)
    if problems:
        raise Bad(problems[0].message, problems[0].hint, problems[0].span, problems[0].code)
    return built


def number(v: Value) -> int | float | ir.ParamRef:
    if v.kind == "num":
        return v.data
    ref = param_ref(v)
    if ref is None:
        raise Bad(f"expected a number or params.NAME, got {v.describe()}")
    return ref


def integer(v: Value) -> int | ir.ParamRef:
    got = number(v)
    if isinstance(got, float):
        raise Bad(f"expected a whole number, got {got}")
    return got


def plain_int(v: Value) -> int:
    if v.kind == "num" and isinstance(v.data, int):
        return v.data
    raise Bad(f"expected a whole number, got {v.describe()}")


def boolean(v: Value) -> bool:
    if v.kind == "name" and len(v.data) == 1 and v.data[0] in _TRUE + _FALSE:
        return v.data[0] in _TRUE
    raise Bad(f"expected true or false (or on / off), got {v.describe()}")


def duration(v: Value) -> float:
    """Seconds: `600`, or a string with a unit, `"10m"`, `"30s"`, `"2h"`."""
    if v.kind == "num" and v.data >= 0:
        return float(v.data)
    match = _DURATION.fullmatch(v.data.strip()) if v.kind == "str" else None
    if match is None:
        got = f'"{v.data}"' if v.kind == "str" else v.describe()
        raise Bad(f"expected seconds or a duration like \"10m\", got {got}", "units: ms, s, m, h, d")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def milliseconds(v: Value, unit: str | None) -> int | float | ir.ParamRef:
    """A latency threshold: `50ms`, `0.05s`, or a bare number of milliseconds."""
    if unit not in (None, "ms", "s"):
        raise Bad(f"unknown unit '{unit}' for a latency", "write milliseconds (50ms) or seconds (0.05s)")
    value = number(v)
    if isinstance(value, ir.ParamRef) and unit == "s":
        # A param holds one number for every use; scaling it here would hide that from the user.
        raise Bad("a latency from params.NAME is in milliseconds", f"write params.{value.name} or params.{value.name} ms")
    return value * 1000 if unit == "s" else value


def cpu(v: Value) -> float:
    """Cores: `2`, `0.5`, or Kubernetes millicores `"500m"`."""
    if v.kind == "num":
        return float(v.data)
    if v.kind == "str" and re.fullmatch(r"\d+m", v.data):
        return int(v.data[:-1]) / 1000
    raise Bad(f"expected a number of cores like 2 or \"500m\", got {v.describe()}")


def ref(v: Value) -> ir.Ref:
    if v.kind == "name" and v.data[0] != "params" and len(v.data) <= 2:
        return ir.Ref(step=v.data[0], port=v.data[1] if len(v.data) == 2 else None, span=v.span)
    raise Bad(f"expected a step or step.output, got {v.describe()}")


def listed(convert: Callable[[Value], Any]) -> Callable[[Value], tuple]:
    """A list of values, or one value standing for a list of one."""
    def convert_list(v: Value) -> tuple:
        return tuple(convert(item) for item in v.data) if v.kind == "list" else (convert(v),)
    return convert_list


def connection(v: Value) -> ir.EnvRef | ir.SecretRef:
    """`env("NAME")` or `secret("name")` / `secret("name", "key")`: never a literal."""
    if v.kind != "call":
        raise Bad(f"expected env(\"NAME\") or secret(\"name\"), got {v.describe()}",
                  "connection strings and URLs hold credentials: they are read at run time, never written in a spec")
    name, args = v.data
    if any(a.kind != "str" for a in args):
        raise Bad(f"{name}(...) takes strings in double quotes")
    if name == "env" and len(args) == 1:
        return ir.EnvRef(name=args[0].data, span=v.span)
    if name == "secret" and len(args) in (1, 2):
        return ir.SecretRef(name=args[0].data, key=args[1].data if len(args) == 2 else None, span=v.span)
    if name in ("env", "secret"):
        raise Bad(f"wrong number of arguments to {name}(...)", 'write env("NAME"), secret("name") or secret("name", "key")')
    raise Bad(f"unknown function '{name}'", did_you_mean(name, ["env", "secret"]))


def scalar(v: Value) -> ir.Scalar:
    if v.kind in ("str", "num"):
        return v.data
    if v.kind == "name" and len(v.data) == 1:
        return {"true": True, "false": False, "none": None, "null": None}.get(v.data[0], v.data[0])
    raise Bad(f"expected a string, number, true or false, got {v.describe()}")


def any_value(v: Value) -> Any:
    """An estimator parameter: a literal, a list, params.NAME, env(...) or secret(...)."""
    if v.kind == "list":
        return [any_value(item) for item in v.data]
    if v.kind == "call":
        return connection(v)
    if v.kind == "name" and len(v.data) > 1:
        return param_ref(v) or ".".join(v.data)
    if v.kind == "ctor":
        raise Bad("a constructor `Name { ... }` is not allowed here")
    return scalar(v)


def options_of(entries: tuple, schema: dict[str, Callable] | None, context: str) -> tuple[dict, dict]:
    """`{ key = value ... }` entries of a nested block -> (values, spans); schema None = any key."""
    values: dict[str, Any] = {}
    spans: dict[str, ir.Span] = {}
    for entry in entries:
        if isinstance(entry, Typed):
            raise Bad(f"{context}: expected `key = value`, got `{entry.name}: {entry.type}`", span=entry.span)
        if entry.key in values:
            raise Bad(f"{context}.{entry.key} is given twice", span=entry.key_span, code="E251")
        if schema is not None and entry.key not in schema:
            raise Bad(f"{context}: unknown option '{entry.key}'", did_you_mean(entry.key, tuple(schema)),
                      entry.key_span, "E250")
        try:
            values[entry.key] = schema[entry.key](entry.value) if schema is not None else any_value(entry.value)
        except Bad as bad:
            raise Bad(f"{context}.{entry.key}: {bad.message}", bad.hint, bad.span or entry.value.span,
                      bad.code) from None
        spans[entry.key] = entry.value.span
    return values, spans

def column_modifier(name: str, payload: Any) -> list[tuple[str, Any, Value | None]]:
    """One modifier -> (field, value, the value as written) triples."""
    if name == "allowed":
        return [("allowed", tuple(scalar(item) for item in payload.data), payload)]
    if name == "between":
        return [("min", number(payload[0]), payload[0]), ("max", number(payload[1]), payload[1])]
    if name == "bound":
        op, value = payload
        if op not in (">=", "<="):
            raise Bad(f"a column bound is `>= MIN` or `<= MAX`, not `{op}`")
        return [("min" if op == ">=" else "max", number(value), value)]
    if name == "nulls":
        op, value = payload
        if value.kind != "num" or not 0 <= value.data <= 1 or op not in ("<=", "<", "=="):
            raise Bad("write `nulls <= FRACTION` with a fraction between 0 and 1",
                      "`nulls <= 0.02` allows up to 2% missing values; `nulls == 0` allows none")
        if op == "==" and value.data != 0:
            raise Bad("`nulls ==` only takes 0; use `nulls <= FRACTION`")
        return [("max_null_fraction", float(value.data), value)]
    return [(name, payload, None)]


def estimator(v: Value) -> ir.Estimator:
    """`sklearn.linear_model.Ridge` or `sklearn.ensemble.RandomForestClassifier { n_estimators = 300 }`."""
    if v.kind == "name" and v.data[0] != "params":
        return ir.Estimator(name=".".join(v.data), span=v.span)
    if v.kind != "ctor":
        raise Bad(f"expected an estimator like sklearn.linear_model.Ridge, got {v.describe()}")
    name, entries = v.data
    params, spans = options_of(entries, None, "estimator")
    return ir.Estimator(name=".".join(name.data), params=params, span=v.span, spans=spans)


# ---------------------------------------------------------------- what each step kind accepts

COMMON_OPTIONS: dict[str, Callable] = {
    "retries": plain_int, "retry_delay": duration, "timeout": duration, "cache": boolean, "after": listed(ref),
}
STEP_OPTIONS: dict[str, dict[str, Callable]] = {
    "source": {"query": quoted, "table": text, "filter": expression, "columns": listed(word),
               "coerce": listed(word), "window": duration, "log": quoted},
    "check": {"data": ref, "on_fail": word},
    "split": {"data": ref, "test_size": number, "seed": integer, "stratify": word, "time_column": word},
    "train": {"data": ref, "target": word, "features": listed(word), "task": word, "estimator": estimator,
              "seed": integer, "missing_target": word},
    "evaluate": {"model": ref, "data": ref, "metrics": listed(word)},
    "gate": {"metrics": ref, "no_champion": word, "registry": text, "alias": text},
    "deploy": {"model": ref, "registry": text, "alias": text},
    "score": {"data": ref, "model": ref, "registry": text, "alias": text, "output": text},
    "monitor": {"model": ref, "reference": ref, "current": ref, "schedule": text, "webhook": connection,
                "min_labels": plain_int},
}
SOURCE_FORMATS: dict[str, Callable] = {"csv": quoted, "parquet": quoted, "sql": connection, "served": word}
# The field a source's format key fills: `csv = "f.csv"` -> path, `served = species_service` -> served.
FORMAT_FIELD = {"csv": "path", "parquet": "path", "sql": "connection", "served": "served"}
# `check penguins_quality on penguins`: the field that `on` / `from` fills, per kind.
LINK_FIELD = {"check": "data", "split": "data", "train": "data", "evaluate": "data", "gate": "metrics",
              "deploy": "model", "score": "data"}
BLOCK_OPTIONS: dict[str, dict[str, Callable]] = {
    "resources": {"cpu": cpu, "memory": text, "gpu": plain_int, "gpu_type": text},
    "serving": {"replicas": plain_int, "port": plain_int, "cpu": cpu, "memory": text,
                "max_batch_size": plain_int, "max_batch_wait_ms": plain_int},
    "preprocessing": {"numeric_impute": word, "scale": boolean, "categorical_impute": word, "encode": word,
                      "max_categories": plain_int, "numeric": listed(word), "categorical": listed(word)},
    "importance": {"repeats": plain_int, "seed": plain_int},
}
BLOCK_KINDS = {"serving": ("deploy",), "preprocessing": ("train",), "types": ("source",), "importance": ("evaluate",)}
BLOCK_MODELS = {"resources": ir.Resources, "serving": ir.Serving, "preprocessing": ir.Preprocessing,
                "importance": ir.Importance}
RULE_KINDS = {"rows": "check", "column": "check", "expect": "check", "require": "gate", "drift": "monitor",
              "metric": "monitor", "latency": "monitor", "tune": "train"}
TUNE_OPTIONS: dict[str, Callable] = {"cv": plain_int, "metric": word, "n_iter": plain_int, "seed": plain_int}


def known_keys(kind: str) -> list[str]:
    keys = list(COMMON_OPTIONS) + list(STEP_OPTIONS[kind]) + ["resources"]
    keys += [b for b, kinds in BLOCK_KINDS.items() if kind in kinds]
    keys += [r for r, k in RULE_KINDS.items() if k == kind]
    return keys + (list(SOURCE_FORMATS) if kind == "source" else [])


def literal_choices(annotation: Any) -> list[str]:
    """The strings of a Literal[...] inside an annotation (`Literal["stop", "warn"] | None`)."""
    if get_origin(annotation) is Literal:
        return [a for a in get_args(annotation) if isinstance(a, str)]
    return [c for arg in get_args(annotation) for c in literal_choices(arg)]


COLUMN_TYPES = ("int", "float", "str", "bool", "category", "datetime")
