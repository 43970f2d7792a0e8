"""Parse tree -> IR.

The grammar is generic (`KIND NAME { key = value ... }`), so this module is where a key becomes
a field: each step kind has a table of the keys it knows and the converter that turns the
written value into the field's value. It only *builds*: names, references, cycles and types of
references are the passes' business. What cannot be built (an unknown key, a value of the wrong
shape, a missing required option) is collected in `problems` and turned into one SpecError by
the parser, so that a spec with five such mistakes reports five.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from lark import Token, Transformer, v_args
from pydantic import ValidationError

from . import ir
from .errors import Diagnostic

STEP_KINDS = tuple(ir.STEP_KINDS)
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

    def __init__(self, message: str, hint: str | None = None, span: ir.Span | None = None):
        super().__init__(message)
        self.message, self.hint, self.span = message, hint, span


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
        raise Bad(f"expected seconds or a duration like \"10m\", got {v.describe()}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


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
            raise Bad(f"{context}.{entry.key} is given twice", span=entry.key_span)
        if schema is not None and entry.key not in schema:
            raise Bad(f"{context}: unknown option '{entry.key}'", did_you_mean(entry.key, tuple(schema)),
                      entry.key_span)
        try:
            values[entry.key] = schema[entry.key](entry.value) if schema is not None else any_value(entry.value)
        except Bad as bad:
            raise Bad(f"{context}.{entry.key}: {bad.message}", bad.hint, bad.span or entry.value.span) from None
        spans[entry.key] = entry.value.span
    return values, spans

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
    "source": {"query": quoted, "table": text, "filter": quoted, "columns": listed(word)},
    "check": {"data": ref, "on_fail": word},
    "split": {"data": ref, "test_size": number, "seed": integer, "stratify": word, "time_column": word},
    "train": {"data": ref, "target": word, "features": listed(word), "task": word, "estimator": estimator,
              "seed": integer},
    "evaluate": {"model": ref, "data": ref, "metrics": listed(word)},
    "gate": {"metrics": ref, "no_champion": word, "registry": text, "alias": text},
    "deploy": {"model": ref, "registry": text, "alias": text},
    "score": {"data": ref, "model": ref, "registry": text, "alias": text, "output": text},
    "monitor": {"model": ref, "reference": ref, "current": ref, "schedule": text, "webhook": connection},
}
SOURCE_FORMATS: dict[str, Callable] = {"csv": quoted, "parquet": quoted, "sql": connection}
# `check penguins_quality on penguins`: the field that `on` / `from` fills, per kind.
LINK_FIELD = {"check": "data", "split": "data", "train": "data", "evaluate": "data", "gate": "metrics",
              "deploy": "model", "score": "data"}
BLOCK_OPTIONS: dict[str, dict[str, Callable]] = {
    "resources": {"cpu": cpu, "memory": text, "gpu": plain_int, "gpu_type": text},
    "serving": {"replicas": plain_int, "port": plain_int, "cpu": cpu, "memory": text},
    "preprocessing": {"numeric_impute": word, "scale": boolean, "categorical_impute": word, "encode": word,
                      "numeric": listed(word), "categorical": listed(word)},
}
BLOCK_KINDS = {"serving": ("deploy",), "preprocessing": ("train",), "types": ("source",)}
BLOCK_MODELS = {"resources": ir.Resources, "serving": ir.Serving, "preprocessing": ir.Preprocessing}
RULE_KINDS = {"rows": "check", "column": "check", "expect": "check", "require": "gate", "drift": "monitor",
              "tune": "train"}
TUNE_OPTIONS: dict[str, Callable] = {"cv": plain_int, "metric": word, "n_iter": plain_int, "seed": plain_int}


def known_keys(kind: str) -> list[str]:
    keys = list(COMMON_OPTIONS) + list(STEP_OPTIONS[kind]) + ["resources"]
    keys += [b for b, kinds in BLOCK_KINDS.items() if kind in kinds]
    keys += [r for r, k in RULE_KINDS.items() if k == kind]
    return keys + (list(SOURCE_FORMATS) if kind == "source" else [])


def _choices(annotation: Any) -> list[str]:
    """The strings of a Literal[...] inside an annotation (`Literal["stop", "warn"] | None`)."""
    if get_origin(annotation) is not None and str(get_origin(annotation)).endswith("Literal"):
        return [a for a in get_args(annotation) if isinstance(a, str)]
    return [c for arg in get_args(annotation) for c in _choices(arg)]


# ---------------------------------------------------------------- the transformer


@v_args(meta=True)
class SpecTransformer(Transformer):
    """Builds the ir.Pipeline; what cannot be built lands in `problems` (never raised)."""

    def __init__(self, file: str, spec_hash: str = ""):
        super().__init__(visit_tokens=False)
        self.file, self.spec_hash = file, spec_hash
        self.problems: list[Diagnostic] = []

    # ------------------------------------------------------------ helpers
    def span(self, meta: Any) -> ir.Span:
        return ir.Span(file=self.file, line=meta.line, col=meta.column, end_line=meta.end_line,
                       end_col=meta.end_column)

    def tspan(self, tok: Token) -> ir.Span:
        return ir.Span(file=self.file, line=tok.line, col=tok.column, end_line=tok.end_line,
                       end_col=tok.end_column)

    def problem(self, code: str, message: str, span: ir.Span | None, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(code, message, span, hint))

    def bad(self, bad: Bad, span: ir.Span, context: str = "", key: str = "") -> None:
        prefix = f"{context}'{key}': " if key else context
        self.problem("E350", prefix + bad.message, bad.span or span, bad.hint)

    def make(self, cls: type, fields: dict, spans: dict, span: ir.Span, context: str) -> Any:
        """cls(**fields), with pydantic's complaints turned into positioned diagnostics."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            seen = set()
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                if key in seen:     # a union field fails once per member: report it once
                    continue
                seen.add(key)
                where = spans.get(key, span)
                if err["type"] == "missing":
                    self.problem("E351", f"{context}missing '{key}'", span, f"add `{key} = ...`")
                elif err["type"] == "literal_error":
                    choices = _choices(cls.model_fields[key].annotation)
                    hint = difflib.get_close_matches(str(err["input"]), choices, n=1, cutoff=0.6)
                    self.problem("E352", f"{context}'{key}' must be one of {', '.join(choices)}; got "
                                 f"'{err['input']}'", where, f"did you mean '{hint[0]}'?" if hint else None)
                else:
                    self.problem("E350", f"{context}'{key}': {err['msg']}", where)
            return None

    def put(self, fields: dict, spans: dict, key: str, value: Any, v: Value, context: str) -> None:
        if key in fields:
            first = spans.get(key)
            self.problem("E251", f"{context}'{key}' is given twice", v.span,
                         f"first given at line {first.line}" if first else None)
            return
        fields[key] = value
        spans[key] = v.span
        if isinstance(value, tuple) and v.kind == "list":
            for n, item in enumerate(v.data):
                spans[f"{key}.{n}"] = item.span

    # ------------------------------------------------------------ values
    def string(self, meta: Any, children: list) -> Value:
        return Value("str", self.decode(children[0]), self.span(meta))

    def decode(self, tok: Token) -> str:
        try:
            return json.loads(tok, strict=False)
        except ValueError:
            self.problem("E106", "invalid escape in string", self.tspan(tok),
                         'strings use JSON escapes: \\" \\\\ \\n \\t \\uXXXX')
            return str(tok)[1:-1]

    def number(self, meta: Any, children: list) -> Value:
        tok = children[-1]
        value: int | float = int(tok) if tok.isdigit() else float(tok)
        if not math.isfinite(value):
            self.problem("E350", f"number out of range: {tok}", self.tspan(tok))
            value = 0
        if len(children) == 2 and children[0] == "-":
            value = -value
        return Value("num", value, self.span(meta))

    def dotted(self, meta: Any, children: list) -> Value:
        return Value("name", tuple(str(t) for t in children), self.span(meta))

    def constructor(self, meta: Any, children: list) -> Value:
        return Value("ctor", (children[0], tuple(children[1:])), self.span(meta))

    def list(self, meta: Any, children: list) -> Value:
        return Value("list", tuple(children), self.span(meta))

    def call(self, meta: Any, children: list) -> Value:
        return Value("call", (str(children[0]), tuple(children[1:])), self.span(meta))

    # ------------------------------------------------------------ items
    def option(self, meta: Any, children: list) -> Option:
        return Option(str(children[0]), children[1], self.tspan(children[0]), self.span(meta))

    def block(self, meta: Any, children: list) -> Block:
        return Block(str(children[0]), tuple(children[1:]), self.tspan(children[0]), self.span(meta))

    def typed_entry(self, meta: Any, children: list) -> Typed:
        default = next((c for c in children[2:] if isinstance(c, Value)), None)
        desc = next((self.decode(c) for c in children[2:] if isinstance(c, Token)), None)
        return Typed(str(children[0]), str(children[1]), self.tspan(children[1]), default, desc, self.span(meta))

    def allow(self, meta: Any, children: list) -> Rule:
        return Rule("allow", (children[1], children[2]), self.span(meta))

    # ------------------------------------------------------------ check rules
    def rows_rule(self, meta: Any, children: list) -> Rule:
        span = self.span(meta)
        try:
            node = self.make(ir.RowsRule, {"op": str(children[1]), "value": integer(children[2]), "span": span},
                             {"op": self.tspan(children[1]), "value": children[2].span}, span, "rows: ")
        except Bad as bad:
            self.bad(bad, children[2].span, "rows: ")
            node = None
        return Rule("rows", node, span)

    def expect_rule(self, meta: Any, children: list) -> Rule:
        span = self.span(meta)
        return Rule("expect", ir.ExpressionRule(expression=self.decode(children[1]), span=span), span)

    def col_in(self, meta: Any, children: list) -> tuple:
        return ("allowed", children[1], self.span(meta))

    def col_between(self, meta: Any, children: list) -> tuple:
        return ("between", (children[1], children[3]), self.span(meta))

    def col_nulls(self, meta: Any, children: list) -> tuple:
        return ("nulls", (str(children[1]), children[2]), self.span(meta))

    def col_nullable(self, meta: Any, children: list) -> tuple:
        return ("nullable", True, self.span(meta))

    def col_not_nullable(self, meta: Any, children: list) -> tuple:
        return ("nullable", False, self.span(meta))

    def col_unique(self, meta: Any, children: list) -> tuple:
        return ("unique", True, self.span(meta))

    def col_matches(self, meta: Any, children: list) -> tuple:
        return ("regex", self.decode(children[1]), self.span(meta))

    def col_bound(self, meta: Any, children: list) -> tuple:
        return ("bound", (str(children[0]), children[1]), self.span(meta))

    def column_rule(self, meta: Any, children: list) -> Rule:
        span = self.span(meta)
        context = f"column {children[1]}: "
        fields: dict[str, Any] = {"column": str(children[1]), "span": span}
        spans = {"column": self.tspan(children[1])}
        mods = children[2:]
        if mods and isinstance(mods[0], Token):
            fields["dtype"], spans["dtype"] = str(mods[0]), self.tspan(mods[0])
            mods = mods[1:]
        for name, payload, mod_span in mods:
            try:
                for key, value, written in self.column_modifier(name, payload):
                    if key in fields:
                        raise Bad(f"'{key}' is given twice")
                    fields[key], spans[key] = value, written.span if written else mod_span
            except Bad as bad:
                self.bad(bad, mod_span, context)
        fields["spans"] = spans
        return Rule("column", self.make(ir.ColumnRule, fields, spans, span, context), span)

    @staticmethod
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

    # ------------------------------------------------------------ gate, monitor, train
    def require_rule(self, meta: Any, children: list) -> Rule:
        span = self.span(meta)
        metric, rest = children[1], children[2:]
        column = rest.pop(0) if rest[0].type == "NAME" else None
        op, value, delta = rest[0], rest[1], rest[2:]
        fields: dict[str, Any] = {"op": str(op), "span": span}
        spans = {"op": self.tspan(op), "value": value.span, "metric": self.tspan(metric)}
        try:
            champion = value.kind == "name" and value.data[0] == "champion"
            if delta and not champion:
                raise Bad("only champion.METRIC takes `+ delta` or `- delta`")
            if column is not None:
                cls = ir.FairnessRule
                fields.update(measure=str(metric), column=str(column), value=number(value))
                spans["measure"] = spans["metric"]
            elif champion:
                if len(value.data) != 2 or value.data[1] != metric:
                    raise Bad(f"compare with the champion's own value: champion.{metric}")
                cls = ir.ChampionRule
                size = int(delta[1]) if delta and delta[1].isdigit() else float(delta[1]) if delta else 0
                fields.update(metric=str(metric), delta=-size if delta and delta[0] == "-" else size)
            else:
                cls = ir.ThresholdRule
                fields.update(metric=str(metric), value=number(value))
        except Bad as bad:
            self.bad(bad, value.span, "require: ")
            return Rule("require", None, span)
        return Rule("require", self.make(cls, fields, spans, span, "require: "), span)

    def drift_rule(self, meta: Any, children: list) -> Rule:
        span = self.span(meta)
        statistic, column, *rest = children[1:]
        measure = rest.pop(0) if rest[0].type == "NAME" else None
        op, value, _arrow, action = rest
        fields = {"statistic": str(statistic), "column": str(column), "op": str(op), "action": str(action),
                  "span": span}
        spans = {"statistic": self.tspan(statistic), "op": self.tspan(op), "action": self.tspan(action),
                 "threshold": value.span}
        if measure is not None:
            fields["measure"], spans["measure"] = str(measure), self.tspan(measure)
        try:
            fields["threshold"] = number(value)
        except Bad as bad:
            self.bad(bad, value.span, "drift: ")
            return Rule("drift", None, span)
        return Rule("drift", self.make(ir.DriftRule, fields, spans, span, "drift: "), span)

    def tune(self, meta: Any, children: list) -> Rule:
        return Rule("tune", children[1], self.span(meta), tuple(children[2:]))

    def build_tune(self, rule: Rule, options: list[Option], context: str) -> ir.Tune | None:
        method = rule.node
        fields: dict[str, Any] = {"method": str(method), "space": {}}
        spans = {"method": self.tspan(method)}
        try:
            for entry in rule.entries:
                if isinstance(entry, Typed) or entry.value.kind != "list":
                    raise Bad("a search space entry is `name = [value, ...]`", span=entry.span)
                if entry.key in fields["space"]:
                    raise Bad(f"'{entry.key}' is given twice", span=entry.key_span)
                fields["space"][entry.key] = tuple(scalar(item) for item in entry.value.data)
                spans[f"space.{entry.key}"] = entry.value.span
            values, value_spans = options_of(tuple(options), TUNE_OPTIONS, "tune")
        except Bad as bad:
            self.bad(bad, rule.span, context)
            return None
        end = options[-1].span if options else rule.span
        span = rule.span.model_copy(update={"end_line": end.end_line, "end_col": end.end_col})
        fields.update(values, span=span, spans=spans | value_spans)
        return self.make(ir.Tune, fields, spans | value_spans, span, context + "tune: ")

    # ------------------------------------------------------------ steps
    def step(self, meta: Any, children: list) -> ir.Step | None:
        kind_tok, name_tok, *items = children
        kind, name = str(kind_tok), str(name_tok)
        if kind not in ir.STEP_KINDS:
            self.problem("E104", f"unknown step kind '{kind}'", self.tspan(kind_tok), did_you_mean(kind, STEP_KINDS))
            return None
        context = f"{kind} {name}: "
        fields: dict[str, Any] = {"name": name, "span": self.span(meta)}
        spans = {"kind": self.tspan(kind_tok), "name": self.tspan(name_tok)}
        rules: dict[str, list] = {"rules": [], "drift": []}
        if items and isinstance(items[0], Token):        # `on REF` / `from REF`
            link, target, items = items[0], items[1], items[2:]
            if kind in LINK_FIELD:
                self.put(fields, spans, LINK_FIELD[kind], self.convert(ref, target, context), target, context)
            else:
                self.problem("E253", f"{context}a {kind} step takes no '{link}'", self.tspan(link),
                             "write reference = ... and current = ..." if kind == "monitor" else None)
        i = 0
        while i < len(items):
            item = items[i]
            i += 1
            if isinstance(item, Option):
                self.step_option(kind, item, fields, spans, context)
            elif isinstance(item, Block):
                self.step_block(kind, item, fields, spans, context)
            elif RULE_KINDS[item.keyword] != kind:
                self.problem("E252", f"{context}'{item.keyword}' belongs in a {RULE_KINDS[item.keyword]} step",
                             item.span)
            elif item.keyword == "tune":
                options = []
                while i < len(items) and isinstance(items[i], Option) and items[i].key in TUNE_KEYS:
                    options.append(items[i])
                    i += 1
                tune = self.build_tune(item, options, context)
                if tune is not None:
                    self.put(fields, spans, "tune", tune, Value("tune", None, item.span), context)
            elif item.node is not None:
                rules["drift" if kind == "monitor" else "rules"].append(item.node)
        for key, found in rules.items():
            if found:
                fields[key] = tuple(found)
        if kind == "source" and "format" not in fields:
            self.problem("E351", f"{context}missing what to read", spans["name"],
                         'add csv = "file.csv", parquet = "file.parquet" or sql = env("DB_URL")')
            return None
        fields["spans"] = spans
        return self.make(ir.STEP_KINDS[kind], fields, spans, spans["name"], context)

    def convert(self, converter: Callable[[Value], Any], v: Value, context: str, key: str = "") -> Any:
        try:
            return converter(v)
        except Bad as bad:
            self.bad(bad, v.span, context, key)
            return None

    def step_option(self, kind: str, option: Option, fields: dict, spans: dict, context: str) -> None:
        key = option.key
        if kind == "source" and key in SOURCE_FORMATS:
            if "format" in fields:
                self.problem("E251", f"{context}a source reads one format, got '{fields['format']}' and '{key}'",
                             option.key_span)
                return
            fields["format"], spans["format"] = key, option.key_span
            key = "connection" if key == "sql" else "path"
            converter = SOURCE_FORMATS[option.key]
        else:
            converter = STEP_OPTIONS[kind].get(key) or COMMON_OPTIONS.get(key)
        if converter is None:
            self.problem("E250", f"{context}unknown option '{key}'", option.key_span,
                         did_you_mean(key, known_keys(kind)))
            return
        value = self.convert(converter, option.value, context, key)
        if value is not None:
            self.put(fields, spans, key, value, option.value, context)

    def step_block(self, kind: str, block: Block, fields: dict, spans: dict, context: str) -> None:
        if kind not in BLOCK_KINDS.get(block.key, STEP_KINDS) or block.key not in BLOCK_KINDS | BLOCK_OPTIONS:
            self.problem("E250", f"{context}unknown option '{block.key}'", block.key_span,
                         did_you_mean(block.key, known_keys(kind)))
            return
        value_spans: dict[str, ir.Span] = {}
        try:
            if block.key == "types":
                value = {}
                for entry in block.entries:
                    if not isinstance(entry, Typed) or entry.default is not None or entry.description:
                        raise Bad("types: write `column: type`", span=entry.span)
                    if entry.type not in _COLUMN_TYPES:
                        raise Bad(f"types: unknown type '{entry.type}'", did_you_mean(entry.type, _COLUMN_TYPES),
                                  entry.type_span)
                    value[entry.name], spans[f"types.{entry.name}"] = entry.type, entry.type_span
            else:
                values, value_spans = options_of(block.entries, BLOCK_OPTIONS[block.key], block.key)
                value = self.make(BLOCK_MODELS[block.key], values | {"spans": value_spans}, value_spans,
                                  block.span, f"{context}{block.key}: ")
        except Bad as bad:
            self.bad(bad, block.span, context)
            return
        if value is not None:
            self.put(fields, spans, block.key, value, Value("block", None, block.span), context)

    # ------------------------------------------------------------ the pipeline
    def start(self, meta: Any, children: list) -> ir.Pipeline | None:
        name_tok, items = children[1], children[2:]
        fields: dict[str, Any] = {"name": str(name_tok), "span": self.span(meta), "source_file": self.file,
                                  "spec_hash": self.spec_hash}
        spans = {"name": self.tspan(name_tok)}
        params, steps, estimators = [], [], []
        for item in items:
            if isinstance(item, ir.Step) or item is None:
                steps.append(item)
            elif isinstance(item, Rule):          # allow estimators [...]
                what, value = item.node
                if what != "estimators":
                    self.problem("E250", f"unknown 'allow {what}'", self.tspan(what), "write allow estimators [...]")
                    continue
                for n, est in enumerate(self.convert(listed(text), value, "allow estimators: ") or ()):
                    spans[f"estimators.{len(estimators)}"] = value.data[n].span if value.kind == "list" else value.span
                    estimators.append(est)
            elif item.key in STEP_KINDS:
                self.problem("E105", f"expected a step name after '{item.key}'", item.key_span,
                             f"write `{item.key} NAME {{ ... }}`")
            elif isinstance(item, Block) and item.key == "params":
                params.extend(p for p in map(self.param, item.entries) if p is not None)
            elif isinstance(item, Option) and item.key in ("description", "schedule"):
                self.put(fields, spans, item.key, self.convert(quoted, item.value, "", item.key), item.value, "")
            else:
                self.problem("E250", f"unknown pipeline option '{item.key}'", item.key_span,
                             did_you_mean(item.key, ("description", "schedule", "params", "allow", *STEP_KINDS)))
        fields.update(params=tuple(params), steps=tuple(s for s in steps if s is not None),
                      estimators=tuple(estimators), spans=spans)
        return self.make(ir.Pipeline, fields, spans, spans["name"], f"pipeline {name_tok}: ")

    def param(self, entry: Option | Typed) -> ir.Param | None:
        if isinstance(entry, Option):
            self.problem("E350", f"params: write `{entry.key}: TYPE = DEFAULT`", entry.span,
                         'e.g. `test_size: float = 0.25 "fraction held out"`')
            return None
        context = f"param {entry.name}: "
        fields = {"name": entry.name, "type": entry.type, "description": entry.description, "span": entry.span}
        if entry.default is not None:
            fields["default"] = self.convert(scalar, entry.default, context, "default")
        spans = {"type": entry.type_span, "default": entry.default.span if entry.default else entry.span}
        return self.make(ir.Param, fields, spans, entry.span, context)


_COLUMN_TYPES = ("int", "float", "str", "bool", "category", "datetime")
