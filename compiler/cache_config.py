"""What of a step decides its outputs: the part of its config that a cache key covers.

One module for the two sides that need it: the local runner hashes it into each step's cache key
(backends/local/cache.py), and `mlopsc diff` compares it to say which steps a run would execute
again (compiler/diff.py). Both read a step as its IR's JSON (`step.model_dump(mode="json")`).

Standard library only: generated local modules import this with `mlopsc[runtime]` alone.
"""
from __future__ import annotations

from typing import Any

# Fields of a step that say how to run it, not what it computes: changing them re-runs nothing.
RUN_POLICY = frozenset({"span", "spans", "retries", "retry_delay", "timeout", "resources", "cache"})
# Kinds whose result depends on the world, not on their inputs: a monitor's alert and retrain
# actions must happen every time it runs.
NEVER_CACHED = frozenset({"monitor"})


def strip_positions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_positions(v) for k, v in value.items() if k not in ("span", "spans")}
    if isinstance(value, list):
        return [strip_positions(v) for v in value]
    return value


def step_config(step_json: dict[str, Any]) -> dict[str, Any]:
    """The step's config without positions (reformatting must not invalidate) and run policy."""
    return strip_positions({k: v for k, v in step_json.items() if k not in RUN_POLICY})


def referenced_params(value: Any) -> set[str]:
    """The names of the params a config reads (`params.NAME` anywhere in it)."""
    if isinstance(value, dict):
        if value.get("kind") == "param" and "name" in value:
            return {value["name"]}
        return set().union(*(referenced_params(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced_params(v) for v in value)) if value else set()
    return set()


def hashed_file(step_json: dict[str, Any]) -> str | None:
    """The path (relative to the spec's folder) of the file a csv/parquet source reads, when the
    key can cover its content; None for SQL, served sources and remote URLs (they run every time)."""
    path = step_json.get("path")
    if step_json.get("kind") != "source" or not path or "://" in path:
        return None
    return path
