"""IR JSON values written back as the spec writes them, for `mlopsc diff`'s text and markdown:

    {"kind": "param", "name": "min_accuracy"}                          -> params.min_accuracy
    {"kind": "threshold", "metric": "accuracy", "op": ">=", "value": 0.9} -> require accuracy >= 0.9
    {"statistic": "psi", "column": "x", "op": ">", "threshold": 0.2, ...} -> drift psi(x) > 0.2 -> retrain

Strings come back quoted (JSON escapes), so a value never reads as syntax it is not.
"""
from __future__ import annotations

import json
from typing import Any

GATE_RULES = frozenset({"threshold", "champion", "fairness"})
RULE_KINDS = GATE_RULES | {"rows", "column", "expression", "metric", "latency"}


def value_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    kind = value.get("kind")
    if kind == "ref":
        return value["step"] if value.get("port") is None else f"{value['step']}.{value['port']}"
    if kind == "param":
        return f"params.{value['name']}"
    if kind == "env":
        return f"env({json.dumps(value['name'])})"
    if kind == "secret":
        key = f", {json.dumps(value['key'])}" if value.get("key") else ""
        return f"secret({json.dumps(value['name'])}{key})"
    if "tree" in value and "text" in value:            # an expression
        return json.dumps(value["text"])
    if kind in RULE_KINDS or "statistic" in value:
        return statement_text(value)
    return "{" + "  ".join(f"{k} = {value_text(v)}" for k, v in value.items()) + "}"


def statement_text(rule: dict[str, Any]) -> str:
    """A rule as its statement reads in the spec: `require ...`, `rows ...`, `drift ...`."""
    return ("require " if rule.get("kind") in GATE_RULES else "") + rule_text(rule)


def rule_text(rule: dict[str, Any]) -> str:
    """A rule without its statement keyword where it has one (`accuracy >= 0.9`)."""
    kind = rule.get("kind", "drift")
    if kind == "threshold":
        return f"{rule['metric']} {rule['op']} {value_text(rule['value'])}"
    if kind == "champion":
        delta = rule["delta"]
        margin = "" if delta == 0 else f" + {value_text(delta)}" if not isinstance(delta, (int, float)) \
            else f" {'-' if delta < 0 else '+'} {abs(delta):g}"
        return f"{rule['metric']} {rule['op']} champion.{rule['metric']}{margin}"
    if kind == "fairness":
        return f"{rule['measure']}({rule['column']}) {rule['op']} {value_text(rule['value'])}"
    if kind == "rows":
        return f"rows {rule['op']} {value_text(rule['value'])}"
    if kind == "expression":
        return f"expect {value_text(rule['expression'])}"
    if kind == "column":
        return column_text(rule)
    if kind == "metric":
        return f"metric {rule['metric']} {rule['op']} {value_text(rule['threshold'])} -> {rule['action']}"
    if kind == "latency":
        return f"latency {rule['percentile']} {rule['op']} {value_text(rule['threshold_ms'])}ms -> {rule['action']}"
    measure = " pvalue" if rule.get("measure") == "pvalue" else ""
    return (f"drift {rule['statistic']}({rule['column']}){measure} {rule['op']} "
            f"{value_text(rule['threshold'])} -> {rule['action']}")


def column_text(rule: dict[str, Any]) -> str:
    head = f"column {rule['column']}" + (f": {rule['dtype']}" if rule.get("dtype") else "")
    mods = []
    if rule.get("allowed") is not None:
        mods.append(f"in {value_text(rule['allowed'])}")
    low, high = rule.get("min"), rule.get("max")
    if low is not None and high is not None:
        mods.append(f"between {value_text(low)} and {value_text(high)}")
    elif low is not None:
        mods.append(f">= {value_text(low)}")
    elif high is not None:
        mods.append(f"<= {value_text(high)}")
    if rule.get("max_null_fraction") is not None:
        fraction = rule["max_null_fraction"]
        mods.append("nulls == 0" if fraction == 0 else f"nulls <= {value_text(fraction)}")
    if rule.get("nullable") is not None:
        mods.append("nullable" if rule["nullable"] else "not nullable")
    if rule.get("unique"):
        mods.append("unique")
    if rule.get("regex") is not None:
        mods.append(f"matches {json.dumps(rule['regex'])}")
    return head + (" " + ", ".join(mods) if mods else "")
