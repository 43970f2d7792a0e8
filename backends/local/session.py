"""One local run as a person or a script starts it: select steps, run them with progress, act on
a monitor's `retrain` (a second run, in the same worker pool, whose outcome the monitor's record
states in a sentence), print the summary (or JSON), return the exit status.

Shared by `mlopsc run/monitor` (cli.py, which has the compiler) and generated local modules
(which have only `mlopsc[runtime]`): both hand over the pipeline IR as JSON plus the step lists
the compiler's graph computed (`pipeline_steps`, `monitor_steps(name)`).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from .order import dependencies, downstream
from .progress import progress_for, summary_lines
from .runner import EXIT, RunOptions, new_run_id, run_steps, worker_pool
from .state import StateBusy, StateDir, write_json_atomic


class SelectionError(Exception):
    """--only / --from name a step that does not exist (a usage error)."""


@dataclass
class Layout:
    """What the compiler knows about the pipeline's shape, as plain lists."""

    pipeline_steps: list[str]
    monitors: dict[str, list[str]] = field(default_factory=dict)   # monitor -> monitor_steps(name)


def select(pipeline: dict[str, Any], layout: Layout, only: str | None, from_step: str | None) -> list[str]:
    from mlopsc.compiler import ir

    names = [s["name"] for s in pipeline["steps"]]
    for option, name in (("--only", only), ("--from", from_step)):
        if name is not None and name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SelectionError(f"{option} {name}: no such step{hint}; steps: {', '.join(names)}")
    if only is not None:
        return layout.monitors.get(only, [only])
    if from_step is not None:
        deps = dependencies(ir.Pipeline.model_validate(pipeline))
        chosen = downstream(deps, from_step) | {from_step}
        return [n for n in layout.pipeline_steps if n in chosen] or [from_step]
    return list(layout.pipeline_steps)


def retrain_requested(record: dict[str, Any]) -> list[str]:
    """Monitors of this run whose drift rules fired a `retrain` action."""
    fired = []
    for name, step in record["steps"].items():
        result = step.get("result") or {}
        if step["kind"] == "monitor" and step["status"] == "ok" and result.get("retrain"):
            fired.append(name)
    return fired


def retrain_outcome(retrain: dict[str, Any]) -> str:
    """What a monitor's retrain run did, in one sentence for the monitor's record and summary.
    A retrain is a normal run: with the training data and config unchanged, every step is a cache
    hit (the same data and config give the same model), so nothing new is deployed, and saying so
    is the point: the user must not wait for a version that is not coming."""
    steps = retrain["steps"]
    if retrain["status"] != "ok":
        name, step = next(((n, s) for n, s in steps.items() if s["status"] == "failed"), (None, {}))
        reason = (step.get("error") or {}).get("reason")
        if reason == "gate":
            return f"the gate {name} did not pass: nothing deployed"
        if reason == "check":
            return f"the check {name} stopped the run: nothing deployed"
        return f"step {name} failed: nothing deployed" if name else f"the run {retrain['status']}: nothing deployed"
    deploys = [(n, s) for n, s in steps.items() if s["kind"] == "deploy"]
    if not deploys:
        return "the pipeline has no deploy step: the retrained model is not deployed"
    trained = any(s["kind"] == "train" and s["status"] == "ok" for s in steps.values())
    sentences = []
    for name, step in deploys:
        result = step.get("result") or {}
        version = f"{result.get('registry')} version {result.get('version')}"
        if step["status"] == "cached" and not trained:
            sentences.append(f"training data and config unchanged since {version}; nothing new to deploy "
                             "until the training data changes")
        elif step["status"] == "cached" or result.get("unchanged"):
            sentences.append(f"the retrained model is identical to {version}; nothing new to deploy")
        else:
            sentences.append(f"deployed {version} (alias {result.get('alias')})")
    return "; ".join(sentences)


def run_session(pipeline: dict[str, Any], layout: Layout, params: dict[str, Any], spec_path: str,
                options: RunOptions, *, only: str | None = None, from_step: str | None = None,
                monitors_only: bool = False, as_json: bool = False) -> int:
    """Run and report; return the exit status. Never raises for a step's failure."""
    try:
        if monitors_only:
            chosen = [only] if only else sorted(layout.monitors)
            selection = list(dict.fromkeys(n for m in chosen for n in layout.monitors.get(m, [m])))
            if only is not None:
                select(pipeline, layout, only, None)   # validates the name
        else:
            selection = select(pipeline, layout, only, from_step)
    except SelectionError as exc:
        print(f"mlopsc: {exc}", file=sys.stderr)
        return EXIT["usage"]
    options = replace(options, run_id=options.run_id or new_run_id(),
                      extra={**options.extra, "only": only, "from": from_step})
    # One pool for the run and the retrain a monitor of it fires: the retrain's steps start in
    # workers that have their modules imported and the MLflow store open, not in a new process tree.
    pool = worker_pool(options, options.run_id)
    try:
        with progress_for() as observer:
            record = run_steps(pipeline, selection, params, spec_path, options, observer, pool)
            fired = retrain_requested(record)
            if fired and record["exit_code"] == 0:
                retrain = run_steps(pipeline, layout.pipeline_steps, params, spec_path,
                                    replace(options, run_id=None, extra={"retrain_of": record["run_id"],
                                                                         "monitors": fired}), observer, pool)
                record["retrain"] = {"run_id": retrain["run_id"], "status": retrain["status"],
                                     "monitors": fired, "exit_code": retrain["exit_code"],
                                     "ran": [n for n, s in retrain["steps"].items() if s["status"] == "ok"],
                                     "outcome": retrain_outcome(retrain)}
                # The monitor's record says what its retrain action started, and what came of it.
                state = StateDir(options.state_dir)
                write_json_atomic(state.run_path(record["run_id"]), record)
    except StateBusy as exc:
        print(f"mlopsc: {exc}", file=sys.stderr)
        return EXIT["usage"]
    except KeyboardInterrupt:
        print("interrupted; the next run resumes from the completed steps", file=sys.stderr)
        return EXIT["interrupted"]
    finally:
        pool.close()
    if as_json:
        print(json.dumps(record, indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(summary_lines(record)))
    code = record["exit_code"]
    if code == 0 and record.get("retrain"):
        code = record["retrain"]["exit_code"]
    return code
