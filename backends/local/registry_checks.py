"""What the local runner asks the model registry when it decides about a cached step.

A gate that compares with the champion records the champion it saw; its cached result holds only
while that champion holds the alias. A cached deploy names who holds its alias now, so that a
summary never claims a version is served after `mlopsc rollback` moved the alias away.
"""
from __future__ import annotations

from typing import Any

from mlopsc.compiler import ir
from mlopsc.runtime import registry_lookup


def observe_champion(tracking_uri: str, gate: ir.Gate) -> tuple[dict[str, Any], str | None]:
    """Look up the champion a gate compares with: (what to record as observed, why the gate must
    run when the lookup is impossible here)."""
    if not gate.registry or not any(isinstance(r, ir.ChampionRule) for r in gate.rules):
        return {}, None
    try:
        return {"champion": registry_lookup.holder(tracking_uri, gate.registry, gate.alias)}, None
    except registry_lookup.Unavailable as exc:
        return {}, f"compares with {gate.registry}@{gate.alias}, which cannot be looked up here ({exc})"


def recheck_champion(gate: ir.Gate, observed: dict[str, Any], entry: dict[str, Any],
                     candidate: str | None) -> tuple[dict | None, str]:
    """A cached gate holds while the champion is the one it compared with, or is the very model
    it judged (`candidate`, deployed since: comparing that model with itself would only churn the
    registry). Any other change of champion runs the gate again."""
    now = observed["champion"]
    seen = entry.get("observed", {}).get("champion", "unknown")
    if now == seen or (now and now["model_sha256"] and now["model_sha256"] == candidate):
        return entry, "cache hit"
    return None, f"{gate.registry}@{gate.alias} changed since the gate ran ({_version(seen)} -> {_version(now)})"


def note_moved_alias(tracking_uri: str, step_name: str, result: dict[str, Any]) -> dict[str, Any]:
    """A cached deploy promotes nothing again (so an `mlopsc rollback` holds), but its result
    names the version it promoted back then: when the alias has moved since, the result returned
    says who holds it now."""
    try:
        now = registry_lookup.holder(tracking_uri, result["registry"], result["alias"])
    except (registry_lookup.Unavailable, KeyError):
        return result
    if now is not None and now["version"] == str(result["version"]):
        return result
    held = f"version {now['version']}" if now else "no version"
    warning = (f"{result['registry']}@{result['alias']} is now held by {held}, not by version "
               f"{result['version']}, which this deploy promoted when it ran (moved since, by `mlopsc "
               f"rollback` or another run); the cached deploy leaves it there. To promote version "
               f"{result['version']} again: mlopsc run SPEC --only {step_name} --no-cache")
    return {**result, "alias_now": held, "warnings": [*(result.get("warnings") or []), warning]}


def _version(holder: dict[str, Any] | str | None) -> str:
    if holder == "unknown":
        return "not recorded"
    return f"version {holder['version']}" if holder else "none"
