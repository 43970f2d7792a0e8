"""`mlopsc plan`: which steps a run would execute and which it would serve from cache, and why,
without executing anything.

It walks the steps in order with the runner's own key computation (runner.Runner.compute_key and
cache_decision), so the prediction and the run cannot drift apart. A file source is predicted
from the sha256 of its file; once a step would run, its outputs are unknown, so what reads them
"may run" (it will be served from cache if the step's outputs come out identical).
"""
from __future__ import annotations

from typing import Any

from .runner import Runner, RunOptions, cached_result


def plan_steps(pipeline: dict[str, Any], selected: list[str], params: dict[str, Any], spec_path: str,
               options: RunOptions) -> list[dict[str, Any]]:
    runner = Runner(pipeline, selected, params, spec_path, options)
    rows = []
    for name in runner.order:
        step = runner.steps[name]
        running_upstream = [d for d in step.deps if runner.steps[d].status != "cached"]
        if running_upstream:
            step.status = "run"
            verdict, why = "may run", f"upstream {', '.join(running_upstream)} will run"
        else:
            path = runner.compute_key(step)
            entry, why = runner.cache_decision(step, path)
            if entry is not None:
                step.status, step.result, verdict = "cached", cached_result(runner.state, entry), "cached"
            elif not step.selected and step.node.kind != "source":
                step.status, verdict = "run", "unavailable"
                why = f"needed by the selection, not selected, and {why}"
            else:
                step.status, verdict = "run", "run"
        rows.append({"step": name, "kind": step.node.kind, "verdict": verdict, "reason": why,
                     "key": step.key or None,
                     "line": step.node.span.line if step.node.span else None})
    return rows


def plan_lines(rows: list[dict[str, Any]]) -> list[str]:
    width = max((len(r["step"]) for r in rows), default=0)
    return [f"{r['verdict']:<11} {r['step']:<{width}}  {r['reason']}" for r in rows]
