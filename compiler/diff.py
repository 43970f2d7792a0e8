"""`mlopsc diff`: what changed between two versions of a spec, compared as IR, never as text.

    diff = diff_programs(load("old.mlops"), load("new.mlops"))
    diff.steps      # added, removed, renamed (matched by content) and changed steps, with their fields
    diff.params     # params added, removed or changed
    diff.reruns     # which steps a run would execute again, and why (the local runner's cache view)
    diff.meaning    # what it means for gates and deploys, in words (diff_meaning.py)

Both programs are compiled (the passes' completions included: a deploy's gate-linked registry, a
check's guard on its consumers), so the diff is of what would run. Positions are never compared:
whitespace, comments and the order of steps make no difference. Outputs are ordered by the graph
(producers first, ties by name), never by where a step stands in the file.

Which steps run again comes from `cache_config`, the part of a step's config that the local
runner's cache key covers: a step runs again when that config, a param it reads or the file it
reads changed, or when it is new or renamed (the cache is kept per step name); a step downstream
of one that runs "may run" (it is served from the cache if its inputs come out byte-identical).
Steps that run every time anyway (monitors, `cache = off`, SQL sources) are listed only when the
change touches them.
"""
from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import ir
from .cache_config import (
    NEVER_CACHED,
    RUN_POLICY,
    hashed_file,
    referenced_params,
    step_config,
    strip_positions,
)

if TYPE_CHECKING:
    from .program import Program

# Reads a file a source names (a path relative to its spec's folder) as one version of the spec
# sees it; None when it cannot be read. Only files both versions can read are compared.
FileReader = Callable[[str], "bytes | None"]
PIPELINE_FIELDS = ("name", "description", "schedule", "estimators")
RULE_LISTS = frozenset({"rules", "drift"})


@dataclass(frozen=True)
class FieldChange:
    """`path` as the spec nests it (`estimator.params.n_estimators`); `old`/`new` are IR JSON
    values without positions, None where the field or rule is absent. A rule list (`rules`,
    `drift`) changes one rule at a time: `old`/`new` are rules matched by what they judge."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class StepChange:
    change: str                      # added | removed | renamed | changed
    kind: str
    name: str                        # the new name (the old one for a removed step)
    old_name: str | None = None      # renamed steps
    fields: tuple[FieldChange, ...] = ()

    @property
    def run_policy_only(self) -> bool:
        """Only how the step runs changed (retries, timeout, resources, cache): nothing reruns."""
        return bool(self.fields) and all(f.path.split(".")[0] in RUN_POLICY for f in self.fields)


@dataclass(frozen=True)
class ParamChange:
    name: str
    old: dict[str, Any] | None       # {type, default, description}; None: added
    new: dict[str, Any] | None       # None: removed


@dataclass(frozen=True)
class Rerun:
    step: str
    kind: str
    verdict: str                     # runs | may run
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Meaning:
    step: str                        # the gate or deploy it is about
    text: str


@dataclass(frozen=True)
class SpecDiff:
    old_label: str
    new_label: str
    pipeline: str
    pipeline_fields: tuple[FieldChange, ...] = ()
    params: tuple[ParamChange, ...] = ()
    steps: tuple[StepChange, ...] = ()
    reruns: tuple[Rerun, ...] = ()
    meaning: tuple[Meaning, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.pipeline_fields or self.params or self.steps or self.reruns or self.meaning)


@dataclass
class Side:
    """One version of the spec, as the diff reads it: steps as IR JSON, params' values."""

    program: Program
    label: str
    read_file: FileReader | None
    steps: dict[str, dict[str, Any]] = field(init=False)
    params: dict[str, Any] = field(init=False)
    deps: dict[str, list[str]] = field(init=False)      # step -> the steps it references, `after` too
    order: list[str] = field(init=False)                 # graph_order(deps)

    def __post_init__(self) -> None:
        steps = self.program.pipeline.steps
        self.steps = {s.name: s.model_dump(mode="json") for s in steps}
        self.params = dict(self.program.params)
        self.deps = {s.name: list(dict.fromkeys(ref.step for _, ref in s.refs())) for s in steps}
        self.order = graph_order(self.deps)


def diff_programs(old: Program, new: Program, old_label: str = "old", new_label: str = "new",
                  old_files: FileReader | None = None, new_files: FileReader | None = None) -> SpecDiff:
    from .diff_meaning import meaning

    a, b = Side(old, old_label, old_files), Side(new, new_label, new_files)
    renames = match_renames(a, b)
    steps = step_changes(a, b, renames)
    return SpecDiff(
        old_label=old_label, new_label=new_label, pipeline=new.pipeline.name,
        pipeline_fields=tuple(pipeline_changes(old.pipeline, new.pipeline)),
        params=tuple(param_changes(old.pipeline, new.pipeline)), steps=tuple(steps),
        reruns=tuple(reruns(a, b, renames, steps)), meaning=tuple(meaning(a, b, renames)))


# ---------------------------------------------------------------- matching steps


def graph_order(references: dict[str, list[str]]) -> list[str]:
    """Producers before consumers, ties by name: the same order whatever the file's order."""
    deps = {name: {r for r in refs if r in references and r != name} for name, refs in references.items()}
    consumers: dict[str, list[str]] = {name: [] for name in references}
    for name, ds in deps.items():
        for d in ds:
            consumers[d].append(name)
    waiting = {name: len(ds) for name, ds in deps.items()}
    ready = [name for name, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for consumer in consumers[name]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, consumer)
    return order + sorted(set(references) - set(order))     # a cycle cannot compile; be safe


def renamed_refs(value: Any, renames: dict[str, str]) -> Any:
    """A step's JSON with references to renamed steps under their new names."""
    if not renames:
        return value
    if isinstance(value, dict):
        if value.get("kind") == "ref" and value.get("step") in renames:
            return {**value, "step": renames[value["step"]]}
        return {k: renamed_refs(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed_refs(v, renames) for v in value]
    return value


def content_key(step: dict[str, Any]) -> str:
    """What a step computes, without its name: equal keys mean a rename."""
    config = step_config(step)
    config.pop("name", None)
    return json.dumps(config, sort_keys=True)


def match_renames(a: Side, b: Side) -> dict[str, str]:
    """old name -> new name for each removed step whose content equals an added one's, references
    followed through earlier renames (old steps in graph order, so a renamed source and the split
    that reads it are both found). Among equal candidates the first by name wins."""
    removed = set(a.steps) - set(b.steps)
    added: dict[str, str] = {}
    for name in sorted(set(b.steps) - set(a.steps), reverse=True):
        added[content_key(b.steps[name])] = name
    renames: dict[str, str] = {}
    for name in a.order:
        if name in removed:
            new_name = added.pop(content_key(renamed_refs(a.steps[name], renames)), None)
            if new_name is not None:
                renames[name] = new_name
    return renames


# ---------------------------------------------------------------- fields


def step_changes(a: Side, b: Side, renames: dict[str, str]) -> list[StepChange]:
    old_names = {renames.get(n, n): n for n in a.steps}      # new name -> old name
    order_b, order_a = b.order, a.order
    added = [StepChange("added", b.steps[n]["kind"], n) for n in order_b if n not in old_names]
    removed = [StepChange("removed", a.steps[n]["kind"], n) for n in order_a
               if n not in b.steps and n not in renames]
    renamed, changed = [], []
    for name in order_b:
        old_name = old_names.get(name)
        if old_name is None:
            continue
        old = strip_positions(renamed_refs(a.steps[old_name], renames))
        new = strip_positions(b.steps[name])
        old.pop("name")
        fields = tuple(value_changes("", old, {k: v for k, v in new.items() if k != "name"}))
        if old_name != name:
            renamed.append(StepChange("renamed", new["kind"], name, old_name, fields))
        elif fields:
            changed.append(StepChange("changed", new["kind"], name, None, fields))
    return added + removed + renamed + changed


def pipeline_changes(old: ir.Pipeline, new: ir.Pipeline) -> list[FieldChange]:
    a = {k: v for k, v in old.model_dump(mode="json").items() if k in PIPELINE_FIELDS}
    b = {k: v for k, v in new.model_dump(mode="json").items() if k in PIPELINE_FIELDS}
    return value_changes("", a, b)


def value_changes(path: str, old: Any, new: Any) -> list[FieldChange]:
    if old == new:
        return []
    if is_record(old) or is_record(new):
        old, new = old or {}, new or {}
        keys = list(new) + [k for k in old if k not in new]
        return [c for k in keys for c in value_changes(f"{path}.{k}" if path else k, old.get(k), new.get(k))]
    if path.rsplit(".", 1)[-1] in RULE_LISTS and isinstance(old, list) and isinstance(new, list):
        return rule_changes(path, old, new)
    return [FieldChange(path, old, new)]


def is_record(value: Any) -> bool:
    """A nested block to compare field by field (an estimator, `resources`, `tune`), as opposed
    to a value shown whole (a reference, `params.X`, an expression, a rule)."""
    return isinstance(value, dict) and value.get("kind") not in ("ref", "param", "env", "secret") \
        and "tree" not in value


def rule_key(rule: dict[str, Any]) -> tuple:
    """What a rule judges: two versions of a rule with the same key are one rule changed."""
    kind = rule.get("kind", "drift")
    if kind == "column":
        return kind, rule["column"]
    if kind == "expression":
        return kind, rule["expression"]["text"]
    if kind == "fairness":
        return kind, rule["measure"], rule["column"]
    if kind == "drift":
        return kind, rule["statistic"], rule["column"], rule["measure"]
    if kind == "latency":
        return kind, rule["percentile"]
    if kind == "rows":
        return (kind,)
    return kind, rule["metric"]                      # threshold, champion, metric


def keyed_rules(rules: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Rules by key; a key written twice (two rules on one column) counts its occurrences."""
    keyed: dict[tuple, dict[str, Any]] = {}
    for rule in rules:
        key = rule_key(rule)
        n = sum(1 for k in keyed if k[:-1] == key)
        keyed[(*key, n)] = rule
    return keyed


def rule_changes(path: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[FieldChange]:
    a, b = keyed_rules(old), keyed_rules(new)
    changes = [FieldChange(path, a.get(k), rule) for k, rule in b.items() if a.get(k) != rule]
    return changes + [FieldChange(path, rule, None) for k, rule in a.items() if k not in b]


def param_changes(old: ir.Pipeline, new: ir.Pipeline) -> list[ParamChange]:
    def described(p: ir.Param) -> dict[str, Any]:
        return {"type": p.type, "default": p.default, "description": p.description}

    a = {p.name: described(p) for p in old.params}
    b = {p.name: described(p) for p in new.params}
    return [ParamChange(name, a.get(name), b.get(name)) for name in sorted(set(a) | set(b))
            if a.get(name) != b.get(name)]


# ---------------------------------------------------------------- what runs again


def always_runs(step: dict[str, Any]) -> bool:
    """Runs on every run, changed or not: its key cannot hold (a monitor, `cache = off`, a source
    whose input is not a local file)."""
    return step["kind"] in NEVER_CACHED or not step.get("cache", True) \
        or (step["kind"] == "source" and hashed_file(step) is None)


def reruns(a: Side, b: Side, renames: dict[str, str], steps: list[StepChange]) -> list[Rerun]:
    old_names = {renames.get(n, n): n for n in a.steps}
    changed = {c.name: c for c in steps}
    found: dict[str, Rerun] = {}
    for name in b.order:
        step, old_name = b.steps[name], old_names.get(name)
        if old_name is None:
            reasons = ["new step"]
        elif old_name != name:
            reasons = [f"renamed from {old_name}: the cache is kept per step name"]
        else:
            reasons = own_reasons(a, b, name, changed.get(name), renames)
        if reasons:
            found[name] = Rerun(name, step["kind"], "runs", tuple(reasons))
            continue
        upstream = sorted({r for r in b.deps[name] if r in found})
        if upstream and not always_runs(step):
            found[name] = Rerun(name, step["kind"], "may run",
                                (f"upstream {', '.join(upstream)} {'runs' if len(upstream) == 1 else 'run'} again",))
    return list(found.values())


def own_reasons(a: Side, b: Side, name: str, change: StepChange | None, renames: dict[str, str]) -> list[str]:
    """Why a step kept under its name would not find its cache entry: its key changed."""
    old, new = step_config(a.steps[name]), step_config(b.steps[name])
    reasons = []
    if old != new:
        paths = [f.path for f in change.fields if f.path.split(".")[0] not in RUN_POLICY] if change else []
        moved = sorted({r for r in a.deps[name] if r in renames})
        if paths:
            reasons.append(f"config changed: {', '.join(dict.fromkeys(paths))}")
        elif moved:
            reasons.append("reads a renamed step: " + ", ".join(f"{r} -> {renames[r]}" for r in moved))
        else:       # rules are compared by what they judge, the key by their order
            reasons.append("its rules were reordered (the cache key follows their order)")
    for param in sorted(referenced_params(new)):
        before, after = a.params.get(param), b.params.get(param)
        if param in a.params and before != after:
            reasons.append(f"param {param} changed: {json.dumps(before)} -> {json.dumps(after)}")
    path = hashed_file(b.steps[name])
    if path is not None and path == hashed_file(a.steps[name]) and a.read_file and b.read_file:
        before_bytes, after_bytes = a.read_file(path), b.read_file(path)
        if before_bytes is not None and after_bytes is not None and _sha(before_bytes) != _sha(after_bytes):
            reasons.append(f"its file {path} changed")
    return reasons


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
