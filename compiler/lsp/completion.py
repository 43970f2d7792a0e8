"""Completion: what may be written at the cursor, from the grammar's tables (options.py, ir.py),
the metric vocabulary, the estimator data, and the pipeline as last parsed (steps, ports, params,
columns). context.py says where the cursor is; this module says what fits there.
"""
from __future__ import annotations

from lsprotocol import types

from .. import ir
from ..estimators import sklearn_estimators
from ..options import (
    BLOCK_KINDS,
    BLOCK_MODELS,
    BLOCK_OPTIONS,
    COLUMN_TYPES,
    FORMAT_FIELD,
    LINK_FIELD,
    PIPELINE_OPTIONS,
    RULE_KINDS,
    STEP_KINDS,
    known_keys,
    literal_choices,
)
from ..passes.common import REF_FIELDS
from ..passes.port_types import EXPECTS
from . import facts
from .analysis import Symbols
from .context import Context, Token
from .ranges import Positions

Kind = types.CompletionItemKind
PARAM_TYPES = literal_choices(ir.Param.model_fields["type"].annotation)
# Options whose value is a column of the dataset the step reads.
COLUMN_OPTIONS = {("train", "target"), ("train", "features"), ("split", "stratify"), ("split", "time_column")}
CONNECTIONS = {"sql", "connection", "webhook"}
COLUMN_MODIFIERS = ("in", "between", "nulls", "nullable", "not nullable", "unique", "matches")
_OPEN = {"LSQB": 1, "LPAR": 1, "RSQB": -1, "RPAR": -1}


def complete(ctx: Context, symbols: Symbols | None, positions: Positions) -> list[types.CompletionItem]:
    if ctx.in_string:
        return []
    symbols = symbols or Symbols(ir.Pipeline(name=""))
    words, frame = ctx.texts(), ctx.frame
    if words and words[-1] == ".":
        return _after_dot(ctx, symbols, positions)
    if words and words[-1] == "->":
        return _choices(literal_choices(ir.DriftRule.model_fields["action"].annotation), "action")
    if frame.kind in ("params", "types"):
        kinds = PARAM_TYPES if frame.kind == "params" else COLUMN_TYPES
        return _choices(kinds, "type") if len(words) == 2 and words[1] == ":" else []
    if frame.kind in ("top", "pipeline"):
        return _pipeline_level(ctx, words, symbols)
    if frame.kind == "step" and words and RULE_KINDS.get(words[0]) == frame.step_kind and "=" not in words:
        return _rule(ctx, words, symbols)
    key, value = _current_option(ctx.statement)
    if key is not None and not (_complete(value) and ctx.after_blank):
        return _values(ctx, key, value, symbols) if _starts_value(value) else []
    if not words or ctx.after_blank:
        return _keys(ctx, symbols)
    return []


# ---------------------------------------------------------------- statement starts


def _pipeline_level(ctx: Context, words: list[str], symbols: Symbols) -> list[types.CompletionItem]:
    if ctx.frame.kind == "top":
        return [_item("pipeline", Kind.Keyword, "a spec is one pipeline", "pipeline ${1:name} {\n\t$0\n}", True)] \
            if not words else []
    if len(words) == 3 and words[0] in STEP_KINDS and words[2] in ("on", "from"):
        expected = EXPECTS.get(words[0], {}).get(LINK_FIELD.get(words[0], ""))
        return _step_refs(symbols, expected, exclude=words[1])
    if len(words) == 2 and words[0] in LINK_FIELD and ctx.after_blank:      # `split parts |`
        return _choices(("from", "on"), f"what {words[0]} {words[1]} reads: its {LINK_FIELD[words[0]]}",
                        Kind.Keyword)
    if words:
        return []
    items = [_item(kind, Kind.Class, f"a {kind} step", f"{kind} ${{1:name}} {{\n\t$0\n}}", True) for kind in STEP_KINDS]
    items += [_item(key, Kind.Property, "pipeline option", f"{key} = ") for key in PIPELINE_OPTIONS]
    items.append(_item("params", Kind.Module, "the pipeline's parameters", "params {\n\t$0\n}", True))
    items.append(_item("allow", Kind.Keyword, "estimators beyond scikit-learn", 'allow estimators ["$1"]', True))
    return items


def _keys(ctx: Context, symbols: Symbols) -> list[types.CompletionItem]:
    frame = ctx.frame
    if frame.kind == "step":
        return [_key_item(key, frame.name) for key in known_keys(frame.name)]
    if frame.kind == "block" and frame.name in BLOCK_OPTIONS:
        return [_item(key, Kind.Property, f"{frame.name} option", f"{key} = ") for key in BLOCK_OPTIONS[frame.name]]
    if frame.kind in ("estimator", "tune"):
        name = frame.name if frame.kind == "estimator" else facts.train_estimator(symbols, frame.step)
        short = (name or "").rpartition(".")[2]
        insert = "{} = " if frame.kind == "estimator" else "{} = [$1]"
        return [_item(p, Kind.Property, f"parameter of {short}", insert.format(p), frame.kind == "tune")
                for p in facts.estimator_params(symbols, name or "")]
    return []


def _key_item(key: str, kind: str) -> types.CompletionItem:
    if key == "tune":
        return _item(key, Kind.Keyword, "tune the estimator", "tune ${1|grid,random|} {\n\t$0\n}", True)
    if key in RULE_KINDS:
        return _item(key, Kind.Keyword, f"a {kind} rule", f"{key} ")
    if key in BLOCK_OPTIONS or key in BLOCK_KINDS:
        return _item(key, Kind.Module, f"{kind} block", f"{key} {{\n\t$0\n}}", True)
    return _item(key, Kind.Property, f"{kind} option", f"{key} = ")


# ---------------------------------------------------------------- rules


def _rule(ctx: Context, words: list[str], symbols: Symbols) -> list[types.CompletionItem]:
    """`column ...` (check), `require ...` (gate), `drift ...` / `metric ...` / `latency ...` (monitor), `tune`."""
    frame, keyword, n = ctx.frame, words[0], len(words)
    dataset = facts.dataset_of(symbols, frame.step, frame.link)
    if keyword == "column":
        if n == 1:
            return _columns(symbols, dataset)
        if n == 3 and words[2] == ":":
            return _choices(COLUMN_TYPES, "column type")
        if ctx.after_blank or words[-1] == ",":
            return _choices(COLUMN_MODIFIERS, "column rule", Kind.Keyword)
        return []
    if keyword == "require":
        if n == 1:
            measures = literal_choices(ir.FairnessRule.model_fields["measure"].annotation)
            return _choices(facts.gate_metrics(symbols, frame.step), "metric") \
                + [_item(m, Kind.Function, "fairness across a column's groups", f"{m}($1)", True) for m in measures]
        if n == 3 and words[2] == "(":
            return _columns(symbols, dataset)
        if n == 3 and ctx.statement[-1].kind == "OP":
            return _choices([f"champion.{words[1]}"], "the registered champion's value")
        return []
    if keyword == "drift":
        if n == 1:
            return _choices(literal_choices(ir.DriftRule.model_fields["statistic"].annotation), "drift statistic",
                            Kind.Function)
        if n == 3 and words[2] == "(":
            return _columns(symbols, dataset)
        if n == 5 and words[4] == ")":
            return _choices(["pvalue"], "judge the test's p-value, not the statistic", Kind.Keyword)
        return []
    if n == 1 and keyword == "metric":
        return _choices(facts.metric_names(facts.step_task(symbols, frame.step)), "metric")
    if n == 1 and keyword == "latency":
        return _choices(literal_choices(ir.LatencyRule.model_fields["percentile"].annotation), "percentile")
    if n == 1 and keyword == "tune":
        return _choices(literal_choices(ir.Tune.model_fields["method"].annotation), "search")
    return []


# ---------------------------------------------------------------- values


def _values(ctx: Context, key: str, value: list[Token], symbols: Symbols) -> list[types.CompletionItem]:
    frame = ctx.frame
    if frame.kind == "block":
        model = BLOCK_MODELS.get(frame.name)
        if frame.name == "preprocessing" and key in ("numeric", "categorical"):
            train = symbols.steps.get(frame.step or "")
            features = getattr(train, "features", None)
            return _choices(features, "feature") if features else \
                _columns(symbols, facts.dataset_of(symbols, frame.step, frame.link))
        return _field_choices(model, key)
    if frame.kind != "step":
        return []
    kind = frame.name
    cls = ir.STEP_KINDS[kind]
    if kind == "source" and key == "served":
        return _step_refs(symbols, None, exclude=frame.step, kinds=("deploy",), names_only=True)
    if key == "after" or key in REF_FIELDS[cls]:
        return _step_refs(symbols, EXPECTS.get(kind, {}).get(key), exclude=frame.step, names_only=key == "after")
    if key == "estimator":
        return _estimators(symbols, frame.step)
    if (kind, key) in COLUMN_OPTIONS:
        return _columns(symbols, facts.dataset_of(symbols, frame.step, frame.link))
    if (kind, key) in (("evaluate", "metrics"), ("train", "metric")):
        return _choices(facts.metric_names(facts.step_task(symbols, frame.step)), "metric")
    if key in CONNECTIONS:
        return [_item('env("NAME")', Kind.Function, "read from the environment at run time", 'env("$1")', True),
                _item('secret("NAME")', Kind.Function, "a platform secret", 'secret("$1")', True)]
    return _field_choices(cls, FORMAT_FIELD.get(key, key) if kind == "source" else key)


def _field_choices(model: type | None, key: str) -> list[types.CompletionItem]:
    """The values a field's type admits: its Literal choices, or true / false."""
    info = model.model_fields.get(key) if model is not None else None
    if info is None:
        return []
    if info.annotation is bool:
        return _choices(["true", "false"], key, Kind.Value)
    return _choices(literal_choices(info.annotation), key, Kind.EnumMember)


def _step_refs(symbols: Symbols, expected: str | None, exclude: str | None, kinds: tuple[str, ...] = (),
               names_only: bool = False) -> list[types.CompletionItem]:
    """`penguins`, `penguins_split.train`: outputs of the expected port type (any when None)."""
    items = []
    for name, step in symbols.steps.items():
        if name == exclude or (kinds and step.KIND not in kinds):
            continue
        if names_only:
            items.append(_item(name, Kind.Reference, f"{step.KIND} step"))
            continue
        for port, port_type in step.OUTPUTS.items():
            if expected is None or port_type == expected:
                label = name if port == step.DEFAULT_PORT else f"{name}.{port}"
                items.append(_item(label, Kind.Reference, f"{step.KIND} {name}: {port} ({port_type})"))
    return items


def _estimators(symbols: Symbols, step_name: str | None, chain: tuple[int, int] | None = None,
                positions: Positions | None = None) -> list[types.CompletionItem]:
    """scikit-learn's classifiers and regressors (those of the step's declared task) and the
    spec's allowed estimators; after `sklearn.` the whole dotted name is replaced."""
    step = symbols.steps.get(step_name or "")
    task = getattr(step, "task", None)
    known = {name: info.task for name, info in sklearn_estimators().items() if task is None or info.task == task}
    known.update({name: None for name in symbols.pipeline.estimators})
    items = []
    for name, its_task in sorted(known.items()):
        item = _item(name, Kind.Class, its_task or "allowed by the spec")
        if chain is not None and positions is not None:
            span = types.Range(start=positions.at(chain[0]), end=positions.at(chain[1]))
            item.text_edit = types.TextEdit(range=span, new_text=name)
            item.filter_text = name
        items.append(item)
    return items


def _columns(symbols: Symbols, dataset: ir.Ref | None) -> list[types.CompletionItem]:
    where = f"column of {dataset}" if dataset is not None else "column"
    return _choices(facts.columns(symbols, dataset), where, Kind.Field)


def _after_dot(ctx: Context, symbols: Symbols, positions: Positions) -> list[types.CompletionItem]:
    """`params.`, `champion.`, `penguins_split.`, `sklearn.ensemble.`"""
    tokens = ctx.statement
    i = len(tokens) - 1
    while i >= 1 and tokens[i].kind == "DOT" and tokens[i - 1].kind == "NAME":
        i -= 2
    chain = [t.text for t in tokens[i + 1::2]]
    key, _ = _current_option(tokens[:i + 1])
    if key == "estimator" or (tokens and tokens[0].text == "allow"):
        return _estimators(symbols, ctx.frame.step, (tokens[i + 1].start, ctx.prefix_start + len(ctx.prefix)),
                           positions)
    if chain == ["params"]:
        return [_item(name, Kind.Variable, f"{p.type} = {p.default}" if p.default is not None else p.type)
                for name, p in symbols.params.items()]
    if chain == ["champion"]:
        return _choices(facts.gate_metrics(symbols, ctx.frame.step), "the registered champion's value")
    step = symbols.steps.get(chain[0]) if len(chain) == 1 else None
    if step is None:
        return []
    return [_item(port, Kind.Field, f"{port_type} output of {step.KIND} {step.name}")
            for port, port_type in step.OUTPUTS.items()]


# ---------------------------------------------------------------- helpers


def _current_option(tokens: list[Token]) -> tuple[str | None, list[Token]]:
    """The last `key =` of the statement and the value tokens after it."""
    for i in range(len(tokens) - 2, -1, -1):
        if tokens[i + 1].kind == "EQUAL" and tokens[i].kind == "NAME":
            return tokens[i].text, tokens[i + 2:]
    return None, []


def _complete(value: list[Token]) -> bool:
    """A value is written in full: something, every bracket closed, not ending in `,` or `.`."""
    depth = sum(_OPEN.get(t.kind, 0) for t in value)
    return bool(value) and depth == 0 and value[-1].kind not in ("EQUAL", "COMMA", "DOT", "SIGN", "COLON", "OP")


def _starts_value(value: list[Token]) -> bool:
    """The cursor is where a value or a list item starts."""
    return not value or value[-1].kind in ("LSQB", "COMMA")


def _choices(names, detail: str, kind: types.CompletionItemKind = Kind.Value) -> list[types.CompletionItem]:
    return [_item(name, kind, detail) for name in names or ()]


def _item(label: str, kind: types.CompletionItemKind, detail: str | None = None, insert: str | None = None,
          snippet: bool = False) -> types.CompletionItem:
    return types.CompletionItem(
        label=label, kind=kind, detail=detail, insert_text=insert,
        insert_text_format=types.InsertTextFormat.Snippet if snippet else None)
