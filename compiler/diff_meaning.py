"""What a change means for the gates and the deploys, in words a reviewer reads:

    gate release: the threshold on accuracy (params.min_accuracy) was lowered from 0.9 to 0.85: easier to pass
    deploy species_service is no longer guarded by a gate (it was by release)
    deploy species_service now moves alias "staging" (was "champion")

Gates and deploys are matched as `diff.py` matches steps (by name, or renamed by content). A value
written as `params.X` is judged by the param's value in each version, so a changed default moves
the threshold even when the rule reads the same.
"""
from __future__ import annotations

import json
from typing import Any

from .cache_config import strip_positions
from .diff import Meaning, Side, keyed_rules
from .diff_text import rule_text, value_text

# For each comparison, the direction of a bound that makes a rule easier to satisfy.
EASIER_WHEN_LOWER = frozenset({">=", ">"})


def meaning(a: Side, b: Side, renames: dict[str, str]) -> list[Meaning]:
    old_names = {renames.get(n, n): n for n in a.steps}
    found: list[Meaning] = []
    for name in b.order:
        step, old_name = b.steps[name], old_names.get(name)
        old = a.steps.get(old_name) if old_name else None
        if step["kind"] == "gate" and old is not None and old["kind"] == "gate":
            found += [Meaning(name, text) for text in gate_changes(a, b, old, step)]
        elif step["kind"] == "deploy":
            found += [Meaning(name, text) for text in deploy_changes(a, b, old, step, renames)]
    for old_name in a.order:
        old = a.steps[old_name]
        if old_name not in b.steps and old_name not in renames and old["kind"] in ("gate", "deploy"):
            found.append(Meaning(old_name, removed_text(old)))
    return found


def removed_text(step: dict[str, Any]) -> str:
    if step["kind"] == "gate":
        return f"gate {step['name']} was removed"
    return (f"deploy {step['name']} was removed: nothing moves alias {json.dumps(step['alias'])} of "
            f"{json.dumps(step['registry'])} any more")


# ---------------------------------------------------------------- gates


def gate_changes(a: Side, b: Side, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    who = f"gate {new['name']}"
    old, new = strip_positions(old), strip_positions(new)
    before, after = keyed_rules(old["rules"]), keyed_rules(new["rules"])
    texts = []
    for key, rule in after.items():
        previous = before.get(key)
        if previous is None:
            texts.append(f"{who} now also requires {rule_text(rule)}{param_values(b, rule)}")
        elif previous["op"] != rule["op"]:
            texts.append(f"{who}: the rule {rule_text(previous)} became {rule_text(rule)}")
        else:
            moved = bound_moved(a, b, previous, rule)
            if moved:
                texts.append(f"{who}: {moved}")
    texts += [f"{who} no longer requires {rule_text(rule)}{param_values(a, rule)}"
              for key, rule in before.items() if key not in after]
    if old["no_champion"] != new["no_champion"]:
        verb = {"pass": ("passes", "failed"), "fail": ("fails", "passed")}[new["no_champion"]]
        texts.append(f"{who} now {verb[0]} when there is no champion yet (it {verb[1]} before)")
    if not new["registry"] and old["registry"]:
        texts.append(f"{who} has no champion to compare with any more: no deploy waits for it (it compared "
                     f"with {champion(old)})")
    elif old["alias"] != new["alias"] or old["registry"] != new["registry"]:
        texts.append(f"{who} now compares with {champion(new)} (was {champion(old)})")
    return texts


def param_values(side: Side, rule: dict[str, Any]) -> str:
    """" (params.min_r2 = 0.4)" for a rule whose bound is a param, else ""."""
    bound = rule.get("delta" if rule["kind"] == "champion" else "value")
    if isinstance(bound, dict) and bound.get("kind") == "param":
        return f" ({value_text(bound)} = {value_text(side.params.get(bound['name']))})"
    return ""


def champion(gate: dict[str, Any]) -> str:
    if not gate["registry"]:        # no deploy waits for the gate: its champion rules find no model
        return "no champion"
    return f"the model holding alias {json.dumps(gate['alias'])} of {json.dumps(gate['registry'])}"


def bound_moved(a: Side, b: Side, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """"the threshold on accuracy was lowered from 0.9 to 0.85: easier to pass", or None."""
    bound = "delta" if new["kind"] == "champion" else "value"
    before, after = resolved(a, old[bound]), resolved(b, new[bound])
    if before == after or not all(isinstance(v, (int, float)) for v in (before, after)):
        return None if before == after else f"the rule {rule_text(old)} became {rule_text(new)}"
    lowered = after < before
    easier = lowered == (new["op"] in EASIER_WHEN_LOWER)
    subject = {"champion": f"the margin against the champion's {new.get('metric')}",
               "fairness": f"the bound on {new.get('measure')}({new.get('column')})"}.get(
        new["kind"], f"the threshold on {new.get('metric')}")
    if old[bound] == new[bound]:          # the same params.X, whose value changed
        values = f"from {before:g} to {after:g} ({value_text(new[bound])})"
    else:
        values = f"from {_bound(before, old[bound])} to {_bound(after, new[bound])}"
    return f"{subject} was {'lowered' if lowered else 'raised'} {values}: {'easier' if easier else 'harder'} to pass"


def _bound(value: float, written: Any) -> str:
    return f"{value:g}" + (f" ({value_text(written)})" if isinstance(written, dict) else "")


def resolved(side: Side, value: Any) -> Any:
    """A bound as it will run: `params.X` is the param's value."""
    if isinstance(value, dict) and value.get("kind") == "param":
        return side.params.get(value["name"])
    return value


# ---------------------------------------------------------------- deploys


def gates_upstream(side: Side, name: str) -> list[str]:
    """Every gate a deploy waits for, directly or not: a gate that fails stops the deploy."""
    seen, todo, gates = {name}, [name], set()
    while todo:
        for producer in side.deps[todo.pop()]:
            if producer in seen or producer not in side.steps:
                continue
            seen.add(producer)
            todo.append(producer)
            if side.steps[producer]["kind"] == "gate":
                gates.add(producer)
    return sorted(gates)


def deploy_changes(a: Side, b: Side, old: dict[str, Any] | None, new: dict[str, Any],
                   renames: dict[str, str]) -> list[str]:
    who = f"deploy {new['name']}"
    guards = gates_upstream(b, new["name"])
    if old is None:
        guarded = f"guarded by {_gates(guards)}" if guards else "not guarded by any gate"
        text = (f"new {who} registers model {new['model']['step']} and moves alias {json.dumps(new['alias'])} "
                f"of {json.dumps(new['registry'])}, {guarded}")
        return [text]
    texts = []
    old_guards = sorted(renames.get(g, g) for g in gates_upstream(a, old["name"]))
    if old_guards and not guards:
        texts.append(f"{who} is no longer guarded by a gate (it was by {_gates(old_guards)})")
    elif guards and not old_guards:
        texts.append(f"{who} is now guarded by {_gates(guards)}")
    elif guards != old_guards:
        texts.append(f"{who} is now guarded by {_gates(guards)} (was {_gates(old_guards)})")
    old_model = renames.get(old["model"]["step"], old["model"]["step"])
    if old_model != new["model"]["step"]:
        texts.append(f"{who} now deploys model {new['model']['step']} (was {old_model})")
    if old["registry"] != new["registry"]:
        texts.append(f"{who} now registers into {json.dumps(new['registry'])} (was {json.dumps(old['registry'])})")
    if old["alias"] != new["alias"]:
        texts.append(f"{who} now moves alias {json.dumps(new['alias'])} (was {json.dumps(old['alias'])})")
    return texts


def _gates(names: list[str]) -> str:
    return ("gate " if len(names) == 1 else "gates ") + ", ".join(names)
