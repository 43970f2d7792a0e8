"""Parse tree -> IR.

Each method turns one grammar rule into a written value (options.Value), an item of a block, or
an IR node; `step` and `start` assemble the nodes with the per-kind tables of options.py. It only
*builds*: names, references, cycles and types of references are the passes' business. What cannot
be built (an unknown key, a value of the wrong shape, a missing required option) is collected in
`problems`, so a spec with five such mistakes reports five. The pipeline is still built from what
is valid: a bad option is left out, and a step or param that cannot be built without it is left
out too, its name kept in `unbuilt_steps` / `unbuilt_params` (see partial.py).
"""
from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from lark import Token
from pydantic import ValidationError

from . import ir
from .errors import Diagnostic
from .options import (
    BLOCK_KINDS,
    BLOCK_MODELS,
    BLOCK_OPTIONS,
    COLUMN_TYPES,
    COMMON_OPTIONS,
    FORMAT_FIELD,
    LINK_FIELD,
    PIPELINE_OPTIONS,
    RULE_KINDS,
    SOURCE_FORMATS,
    STEP_KINDS,
    STEP_OPTIONS,
    TUNE_KEYS,
    Bad,
    Block,
    Option,
    Rule,
    Typed,
    Value,
    did_you_mean,
    known_keys,
    listed,
    literal_choices,
    options_of,
    quoted,
    ref,
    scalar,
    text,
)
from .positions import cover_span, token_span
from .rule_builders import RuleBuilders

# ---------------------------------------------------------------- the transformer


class SpecTransformer(RuleBuilders):
    """Builds the ir.Pipeline; what cannot be built lands in `problems` (never raised).

    Each grammar rule NAME has a method NAME(children). The parser runs them inline, as lark's
    LALR parser reduces (no parse tree is built: a third of the time of a 1000-step spec). Spans
    come from the first and last child, which is why the grammar keeps the closing `}`, `]` and `)`
    tokens. The rules inside blocks are built by the RuleBuilders mixin (rule_builders.py)."""

    def __init__(self, file: str = "<string>", spec_hash: str = ""):
        self.reset(file, spec_hash)

    def reset(self, file: str, spec_hash: str = "") -> None:
        self.file, self.spec_hash = file, spec_hash
        self.problems: list[Diagnostic] = []
        self.unbuilt_steps: set[str] = set()
        self.unbuilt_params: set[str] = set()
        self.undecoded: set[tuple[int, int]] = set()     # where strings with a bad escape start
        self.step_mark = 0      # problems before this index belong to earlier steps

    # ------------------------------------------------------------ helpers
    def cover(self, children: list) -> ir.Span:
        return cover_span(self.file, children)

    def tspan(self, tok: Token) -> ir.Span:
        return token_span(self.file, tok)

    def problem(self, code: str, message: str, span: ir.Span | None, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(code, message, span, hint))

    def bad(self, bad: Bad, span: ir.Span, context: str = "", key: str = "") -> None:
        prefix = f"{context}'{key}': " if key else context
        self.problem(bad.code, prefix + bad.message, bad.span or span, bad.hint)

    def make(self, cls: type, fields: dict, spans: dict, span: ir.Span, context: str,
             tried: set[str] | None = None) -> Any:
        """cls(**fields), with pydantic's complaints turned into positioned diagnostics; a value it
        rejects is left out, as a bad option is, so the node is built if that field has a default.
        A field in `tried` was written but could not be converted (already reported): it is not
        also reported missing; tried=None means a misspelt key was reported, which is likely the
        missing field: nothing is reported missing."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            seen, rejected = set(), set()
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                if key in seen:     # a union field fails once per member: report it once
                    continue
                seen.add(key)
                where = spans.get(key, span)
                if err["type"] == "missing":
                    if tried is not None and key not in tried:
                        self.problem("E351", f"{context}missing '{key}'", span, f"add `{key} = ...`")
                    continue
                rejected.add(key)
                if err["type"] == "literal_error":
                    choices = literal_choices(cls.model_fields[key].annotation)
                    hint = difflib.get_close_matches(str(err["input"]), choices, n=1, cutoff=0.6)
                    self.problem("E352", f"{context}'{key}' must be one of {', '.join(choices)}; got "
                                 f"'{err['input']}'", where, f"did you mean '{hint[0]}'?" if hint else None)
                else:
                    self.problem("E350", f"{context}'{key}': {err['msg']}", where)
        try:
            return cls(**{k: v for k, v in fields.items() if k not in rejected}) if rejected else None
        except ValidationError:     # something is missing (reported) or a rejected value was required
            return None

    def put(self, fields: dict, spans: dict, key: str, value: Any, written: Value | ir.Span, context: str,
            key_span: ir.Span | None = None) -> None:
        """fields[key] = value with its span (and its items' spans: `key.N`), once per key.
        None is a value that could not be converted (already reported): left out."""
        span = written if isinstance(written, ir.Span) else written.span
        if key in fields:
            first = spans.get(key)
            self.problem("E251", f"{context}'{key}' is given twice", key_span or span,
                         f"first given at line {first.line}" if first else None)
            return
        if value is None:
            return
        fields[key] = value
        spans[key] = span
        if isinstance(value, tuple) and isinstance(written, Value) and written.kind == "list":
            for n, item in enumerate(written.data):
                spans[f"{key}.{n}"] = item.span

    # ------------------------------------------------------------ values
    def string(self, children: list) -> Value:
        return Value("str", self.decode(children[0]), self.cover(children))

    def decode(self, tok: Token) -> str:
        try:
            return json.loads(tok, strict=False)
        except ValueError:
            span = self.tspan(tok)
            self.undecoded.add((span.line, span.col))
            self.problem("E106", "invalid escape in string", span,
                         'strings use JSON escapes: \\" \\\\ \\n \\t \\uXXXX')
            return str(tok)[1:-1]

    def number(self, children: list) -> Value:
        tok = children[-1]
        value: int | float = int(tok) if tok.isdigit() else float(tok)
        if not math.isfinite(value):
            self.problem("E350", f"number out of range: {tok}", self.tspan(tok))
            value = 0
        if len(children) == 2 and children[0] == "-":
            value = -value
        return Value("num", value, self.cover(children))

    def dotted(self, children: list) -> Value:
        return Value("name", tuple(str(t) for t in children), self.cover(children))

    def constructor(self, children: list) -> Value:
        return Value("ctor", (children[0], tuple(children[1:-1])), self.cover(children))

    def list(self, children: list) -> Value:
        return Value("list", tuple(children[1:-1]), self.cover(children))

    def call(self, children: list) -> Value:
        return Value("call", (str(children[0]), tuple(children[1:-1])), self.cover(children))

    # ------------------------------------------------------------ items
    def option(self, children: list) -> Option:
        return Option(str(children[0]), children[1], self.tspan(children[0]), self.cover(children))

    def block(self, children: list) -> Block:
        return Block(str(children[0]), tuple(children[1:-1]), self.tspan(children[0]), self.cover(children))

    def typed_entry(self, children: list) -> Typed:
        default = next((c for c in children[2:] if isinstance(c, Value)), None)
        desc = next((self.decode(c) for c in children[2:] if isinstance(c, Token)), None)
        return Typed(str(children[0]), str(children[1]), self.tspan(children[1]), default, desc, self.cover(children))

    def allow(self, children: list) -> Rule:
        return Rule("allow", (children[1], children[2]), self.cover(children))

    # ------------------------------------------------------------ steps
    def step(self, children: list) -> ir.Step | None:
        kind_tok, name_tok, *items = children[:-1]
        kind, name = str(kind_tok), str(name_tok)
        if kind not in ir.STEP_KINDS:
            self.problem("E104", f"unknown step kind '{kind}'", self.tspan(kind_tok), did_you_mean(kind, STEP_KINDS))
            return None
        context = f"{kind} {name}: "
        fields: dict[str, Any] = {"name": name, "span": self.cover(children)}
        spans = {"kind": self.tspan(kind_tok), "name": self.tspan(name_tok)}
        rules: dict[str, list] = {"rules": [], "drift": []}
        written = set()         # fields the spec writes, converted or not
        if items and isinstance(items[0], Token):        # `on REF` / `from REF`
            link, target, items = items[0], items[1], items[2:]
            written.add(LINK_FIELD.get(kind, ""))
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
                    self.put(fields, spans, "tune", tune, item.span, context)
            elif item.node is not None:
                rules["drift" if item.keyword == "drift" else "rules"].append(item.node)
        for key, found in rules.items():
            if found:
                fields[key] = tuple(found)
        unknown_keys = any(p.code == "E250" for p in self.problems[self.step_mark:])
        written |= {getattr(i, "key", "") for i in items}
        tried = written | {"path" if "csv" in written or "parquet" in written else "connection"}
        if kind == "source" and "format" not in fields and not unknown_keys:
            self.problem("E351", f"{context}missing what to read", spans["name"],
                         'add csv = "file.csv", parquet = "file.parquet" or sql = env("DB_URL")')
            node = None
        else:
            fields["spans"] = spans
            node = self.make(ir.STEP_KINDS[kind], fields, spans, spans["name"], context,
                             None if unknown_keys else tried)
        self.name_step(context, fields["span"])
        if node is None:
            self.unbuilt_steps.add(name)
        return node

    def name_step(self, context: str, span: ir.Span) -> None:
        """Rules and strings are built before the step they sit in: name it in their messages."""
        for i in range(self.step_mark, len(self.problems)):
            problem = self.problems[i]
            inside = problem.span and (span.line, span.col) <= (problem.span.line, problem.span.col) \
                and (problem.span.end_line, problem.span.end_col) <= (span.end_line, span.end_col)
            if inside and not problem.message.startswith(context):
                self.problems[i] = replace(problem, message=context + problem.message)
        self.step_mark = len(self.problems)

    def convert(self, converter: Callable[[Value], Any], v: Value, context: str, key: str = "") -> Any:
        if v.kind == "str" and (v.span.line, v.span.col) in self.undecoded:
            return None     # reported by decode; its text is not what was meant
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
            key = FORMAT_FIELD[key]
            converter = SOURCE_FORMATS[option.key]
        else:
            converter = STEP_OPTIONS[kind].get(key) or COMMON_OPTIONS.get(key)
        if converter is None:
            self.problem("E250", f"{context}unknown option '{key}'", option.key_span,
                         did_you_mean(key, known_keys(kind)))
            return
        value = self.convert(converter, option.value, context, option.key)
        self.put(fields, spans, key, value, option.value, context, option.key_span)

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
                    if entry.type not in COLUMN_TYPES:
                        raise Bad(f"types: unknown type '{entry.type}'", did_you_mean(entry.type, COLUMN_TYPES),
                                  entry.type_span)
                    if entry.name in value:
                        raise Bad(f"types: '{entry.name}' is given twice", span=entry.span, code="E251")
                    value[entry.name], spans[f"types.{entry.name}"] = entry.type, entry.type_span
            else:
                values, value_spans = options_of(block.entries, BLOCK_OPTIONS[block.key], block.key)
                value = self.make(BLOCK_MODELS[block.key], values | {"spans": value_spans}, value_spans,
                                  block.span, f"{context}{block.key}: ")
        except Bad as bad:
            self.bad(bad, block.span, context)
            return
        self.put(fields, spans, block.key, value, block.span, context)

    # ------------------------------------------------------------ the pipeline
    def start(self, children: list) -> ir.Pipeline | None:
        name_tok, items = children[1], children[2:-1]
        fields: dict[str, Any] = {"name": str(name_tok), "span": self.cover(children), "source_file": self.file,
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
            elif isinstance(item, Option) and item.key in PIPELINE_OPTIONS:
                self.put(fields, spans, item.key, self.convert(quoted, item.value, "", item.key), item.value, "")
            else:
                self.problem("E250", f"unknown pipeline option '{item.key}'", item.key_span,
                             did_you_mean(item.key, (*PIPELINE_OPTIONS, "params", "allow", *STEP_KINDS)))
        fields.update(params=tuple(params), steps=tuple(s for s in steps if s is not None),
                      estimators=tuple(estimators), spans=spans)
        return self.make(ir.Pipeline, fields, spans, spans["name"], f"pipeline {name_tok}: ")

    def param(self, entry: Option | Typed) -> ir.Param | None:
        if isinstance(entry, Option):
            self.problem("E350", f"params: write `{entry.key}: TYPE = DEFAULT`", entry.span,
                         'e.g. `test_size: float = 0.25 "fraction held out"`')
            self.unbuilt_params.add(entry.key)
            return None
        context = f"param {entry.name}: "
        fields = {"name": entry.name, "type": entry.type, "description": entry.description, "span": entry.span}
        if entry.default is not None:
            fields["default"] = self.convert(scalar, entry.default, context, "default")
        spans = {"type": entry.type_span, "default": entry.default.span if entry.default else entry.span}
        param = self.make(ir.Param, fields, spans, entry.span, context)
        if param is None:
            self.unbuilt_params.add(entry.name)
        return param

