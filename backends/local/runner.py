"""The local runner: executes a pipeline's steps in topological order, cached and resumable.

Input is data, not a Program: the pipeline IR as JSON, the names of the steps to run, the bound
params and the spec's path. So `mlopsc run` (which has the compiler) and a generated local module
(which has only `mlopsc[runtime]`) call the same `run_steps`. Dependencies come from the IR's
references (`Step.refs()`), ordered with the stdlib's graphlib: no networkx at run time.

Each step runs in a persistent worker process (pool.py) through `mlopsc.runtime.execute`, with
its outputs in a staging folder; when it succeeds the folder becomes `artifacts/<step>/<key>/`
and only then is the cache entry written. Steps hand each other artifact URIs, never objects.
"""
from __future__ import annotations

import graphlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlopsc.compiler import ir
from mlopsc.compiler.cache_config import NEVER_CACHED
from mlopsc.runtime import registry_lookup
from mlopsc.runtime.core import StepError, os_user
from mlopsc.runtime.report import layout_of

from ..cli import EXIT
from . import cache, registry_checks
from .order import dependencies, reads, with_upstream
from .pool import WorkerPool
from .preload import REPORT_MODULES, tracking_modules, warm_modules
from .reporting import write_run_report
from .state import StateDir, write_json_atomic

Observer = Callable[[str, str, dict[str, Any]], None]


@dataclass
class RunOptions:
    state_dir: str | Path
    no_cache: bool = False
    force_gate: bool = False
    jobs: int = 0                      # 0 = the core count
    run_id: str | None = None
    record_lineage: bool = True
    extra: dict[str, Any] = field(default_factory=dict)   # stored in the run record as is


@dataclass
class StepState:
    name: str
    node: ir.Step
    deps: tuple[str, ...]
    selected: bool                     # False: upstream of the selection, served from cache
    status: str = "pending"            # pending, ready, running, ok, cached, failed, skipped, not_run
    reason: str = ""
    key: str = ""
    components: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)   # the world outside its inputs, as it ran
    attempt: int = 0
    ready_at: float = 0.0
    started: float = 0.0
    started_at: float | None = None    # wall clock, for the record: when its worker first began it, ended
    ended_at: float | None = None
    deadline: float | None = None
    task: int | None = None
    duration: float = 0.0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class Runner:
    def __init__(self, pipeline: dict[str, Any], selected: list[str], params: dict[str, Any],
                 spec_path: str, options: RunOptions, observer: Observer | None = None,
                 pool: WorkerPool | None = None) -> None:
        self.pipeline = ir.Pipeline.model_validate(pipeline)
        self.step_json = {s["name"]: s for s in pipeline["steps"]}
        self.params = params
        self.spec_path = str(Path(spec_path).resolve())
        self.base_dir = Path(self.spec_path).parent
        self.options = options
        self.state = StateDir(options.state_dir)
        self.run_id = options.run_id or new_run_id()
        self.observe = observer or (lambda event, step, info: None)
        deps = dependencies(self.pipeline)
        order = with_upstream(deps, selected)
        self.steps = {name: StepState(name, self.pipeline.step(name), deps[name], name in selected)
                      for name in order}
        self.order = order
        self.context = {
            "pipeline": self.pipeline.name, "run_id": self.run_id, "params": params,
            "spec_path": self.spec_path, "spec_hash": self.pipeline.spec_hash,
            "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI") or self.state.mlflow_uri,
            "parent_run_id": None, "force_gate": options.force_gate,
            "forced_by": os_user() if options.force_gate else None,
            "artifact_root": str(self.state.root / "artifacts"),
        }
        self.started = time.time()
        self.failure: StepState | None = None
        self.error: dict[str, Any] | None = None     # a failure of the run, not of one step
        self.pool: WorkerPool | None = None
        self.shared_pool = pool            # the caller's, kept open after the run
        self.mlflow_started = False
        self.layout = layout_of(self.pipeline.steps)
        self.report: str | None = None
        self.report_error: str | None = None

    # ---------------------------------------------------------------- public
    def run(self) -> dict[str, Any]:
        self.state.acquire()
        self.pool = self.shared_pool or worker_pool(self.options, self.run_id)
        status = "interrupted"
        try:
            self.observe("plan", "", {"steps": self.order, "run_id": self.run_id})
            self._save("running")
            self._schedule()
            status = "failed" if self.failure else "ok"
        except StepError as exc:   # the run could not start its steps: its MLflow store
            self.error = {"type": "error", "message": exc.message, "expected": exc.expected, "found": exc.found}
            status = "failed"
        finally:
            self._finish(status)
            if self.shared_pool is None or status == "interrupted":   # a shared pool outlives a run, not an interrupt
                self.pool.close(kill=status == "interrupted")
            self.state.release()
        return self.record(status)

    # ---------------------------------------------------------------- scheduling
    def _schedule(self) -> None:
        running: dict[int, StepState] = {}
        while True:
            self._resolve_pending()
            now = time.monotonic()
            ready = [s for s in self._in_order("ready") if s.ready_at <= now]
            for step in ready:
                if self.failure is not None:
                    break
                self._start_mlflow(step)
                worker = self.pool.idle_worker(warm_modules(step.node))
                if worker is None:
                    break
                self._dispatch(step, worker, running)
            # After a failure nothing new starts: wait for the running steps (their results are
            # cached for the next run), then stop.
            if not running and (self.failure is not None or not self._in_order("ready")):
                break
            self._wait(running)
        for step in self.steps.values():
            if step.status in ("pending", "ready"):
                step.status, step.reason = "not_run", "the run stopped before it"
                self.observe("skipped", step.name, {"reason": step.reason})

    def _in_order(self, status: str) -> list[StepState]:
        return [self.steps[n] for n in self.order if self.steps[n].status == status]

    def _resolve_pending(self) -> None:
        """Decide, for each pending step whose dependencies are done, cache hit or run."""
        progress = True
        while progress:
            progress = False
            for step in self._in_order("pending"):
                upstream = [self.steps[d] for d in step.deps]
                if any(u.status in ("failed", "skipped", "not_run") for u in upstream):
                    step.status, step.reason = "skipped", "an upstream step did not complete"
                    self.observe("skipped", step.name, {"reason": step.reason})
                    progress = True
                elif all(u.status in ("ok", "cached") for u in upstream) and self.failure is None:
                    self._decide(step)
                    progress = True

    def compute_key(self, step: StepState) -> Path | None:
        """Fill the step's key components from its upstream results; return the file a source
        reads when it can be hashed."""
        node, hashes = step.node, {}
        for field_name, ref in reads(node).items():
            hashes[field_name] = self._output(ref.step, ref.port)["sha256"]
        for ref in node.after:
            for port, out in sorted(self.steps[ref.step].result["outputs"].items()):
                hashes[f"after.{ref.step}.{port}"] = out["sha256"]
        extra = {"forced": True} if node.kind == "gate" and self.options.force_gate else {}
        path = cache.source_file(self.step_json[step.name], self.base_dir)
        if path is not None and path.is_file():
            hashes["file"] = cache.file_sha256(self.state, path)
        step.components = cache.key_components(self.step_json[step.name], self.params, hashes, extra)
        step.key = cache.cache_key(step.components)
        return path

    def _decide(self, step: StepState) -> None:
        node = step.node
        path = self.compute_key(step)
        entry, why = self.cache_decision(step, path)
        if entry is not None:
            step.status, step.reason = "cached", why
            step.result = cached_result(self.state, entry)
            if node.kind == "deploy":
                step.result = registry_checks.note_moved_alias(self.context["tracking_uri"], step.name, step.result or {})
            self.observe("cached", step.name, {"reason": why})
            self._save("running")
        elif not step.selected and node.kind != "source":   # a source is simply read again
            step.status = "failed"
            step.error = {"type": "unavailable", "message": (
                f"step {step.name} is upstream of the selected steps but has no cached result "
                f"({why}); run the pipeline without --only/--from first")}
            self.failure = self.failure or step
            self.observe("failed", step.name, {"error": step.error})
        else:
            step.status, step.reason = "ready", why
            step.ready_at = 0.0

    def cache_decision(self, step: StepState, path: Path | None) -> tuple[dict | None, str]:
        node = step.node
        if node.kind == "source" and path is None:
            return None, "source: always re-read (its input cannot be hashed here)"
        if node.kind in NEVER_CACHED:
            return None, f"a {node.kind} always runs"
        if not node.cache:
            return None, "cache = off"
        if self.options.no_cache and step.selected:
            return None, "--no-cache"
        unavailable = None
        if node.kind == "gate":
            step.observed, unavailable = registry_checks.observe_champion(self.context["tracking_uri"], node)
        if unavailable:
            return None, unavailable
        entry, why = cache.lookup(self.state, step.name, step.key)
        if entry is not None and "champion" in step.observed:
            entry, why = registry_checks.recheck_champion(node, step.observed, entry, self._candidate(node))
        if entry is not None:
            return entry, "input file unchanged" if "file" in step.components["inputs"] else "cache hit"
        if why == "no cache entry":
            why = cache.explain_miss(self.state, step.name, step.components)
        return None, why

    def _candidate(self, gate: ir.Gate) -> str | None:
        """The sha256 of the model a gate judges: the model its evaluate step scored."""
        evaluate = self.steps.get(gate.metrics.step)
        ref = getattr(evaluate.node, "model", None) if evaluate else None
        producer = self.steps.get(ref.step) if ref is not None else None
        if producer is None or not producer.result:
            return None
        return producer.result["outputs"].get(ref.port, {}).get("sha256")

    def _output(self, step: str, port: str) -> dict[str, str]:
        """A Ref's port is always filled: the IR comes from a Program (docs/architecture.md)."""
        return self.steps[step].result["outputs"][port]

    def _dispatch(self, step: StepState, worker, running: dict[int, StepState]) -> None:
        step.attempt += 1
        staging = self.state.staging_dir(step.name, self.run_id, step.attempt)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        inputs = {f: self._output(ref.step, ref.port)["uri"] for f, ref in reads(step.node).items()}
        request = {"op": "step", "step": self.step_json[step.name], "inputs": inputs,
                   "base": str(staging), "context": self.context,
                   "log": str(self.state.log_path(self.run_id, step.name))}
        step.task = self.pool.submit(worker, request, warm_modules(step.node))
        # The attempt's duration and timeout count from when its worker says it began: a new fork
        # may first wait for the zygote's imports, which is not the step's time.
        step.status, step.started, step.deadline = "running", time.monotonic(), None
        running[worker.index] = step
        self.observe("start", step.name, {"attempt": step.attempt, "reason": step.reason})
        self._save("running")

    def _wait(self, running: dict[int, StepState]) -> None:
        """Wait for one worker event, a step's deadline or a retry's delay, and act on it."""
        import queue

        now = time.monotonic()
        wakeups = [s.deadline for s in running.values() if s.deadline]
        wakeups += [s.ready_at for s in self._in_order("ready") if s.ready_at > now]
        try:
            index, answer = self.pool.events.get(timeout=max(0.0, min(wakeups) - now) if wakeups else None)
        except queue.Empty:
            index, answer = None, None
        step = running.get(index) if index is not None else None
        if answer is None and index is not None:
            self.pool.workers.pop(index, None)     # a worker died; a new one starts on demand
            if step is not None:
                running.pop(index)
                self._attempt_failed(step, {"type": "error", "message": (
                    "the worker process died while running this step (out of memory or killed?); "
                    f"see {self.pool.log_dir / f'worker-{index}.log'}")})
        elif step is not None and answer["id"] == step.task and "started" in answer:
            step.started = time.monotonic()
            step.started_at = step.started_at or answer["started"]
            step.deadline = step.started + step.node.timeout if step.node.timeout else None
        elif step is not None and answer["id"] == step.task:
            running.pop(index)
            worker = self.pool.workers[index]
            worker.busy, worker.tasks_done = None, worker.tasks_done + 1
            if answer["ok"]:
                self._succeeded(step, answer["result"])
            else:
                self._attempt_failed(step, answer["error"])
        now = time.monotonic()
        for index, step in list(running.items()):
            if step.deadline and now >= step.deadline:
                running.pop(index)
                self.pool.kill(self.pool.workers[index])
                self._attempt_failed(step, {"type": "error", "message": (
                    f"timed out after {step.node.timeout:g} s (timeout = {step.node.timeout:g}); "
                    "the step's process was killed")})

    def _attempt_failed(self, step: StepState, error: dict[str, Any]) -> None:
        step.duration += time.monotonic() - step.started
        staging = self.state.staging_dir(step.name, self.run_id, step.attempt)
        if error["type"] == "failed" and staging.is_dir():
            # A stopping verdict's report (failed expectations, gate rules) is kept for the user,
            # outside the content-addressed folders and with no cache entry.
            kept = self.state.failed_dir(step.name, self.run_id)
            shutil.rmtree(kept, ignore_errors=True)
            os.replace(staging, kept)
            error = {**error, "result": _replace_prefix(error.get("result"), str(staging), str(kept))}
        shutil.rmtree(staging, ignore_errors=True)
        retryable = error["type"] in ("error", "internal")
        if retryable and step.attempt <= step.node.retries:
            step.status, step.ready_at = "ready", time.monotonic() + step.node.retry_delay
            self.observe("retry", step.name, {"attempt": step.attempt, "error": error})
            return
        step.status, step.error, step.ended_at = "failed", error, time.time()
        step.result = error.get("result") or None
        self.failure = self.failure or step
        self.observe("failed", step.name, {"error": error})
        self._save("running")

    def _succeeded(self, step: StepState, result: dict[str, Any]) -> None:
        step.duration += time.monotonic() - step.started
        staging = self.state.staging_dir(step.name, self.run_id, step.attempt)
        if step.node.kind == "source" and "file" not in step.components["inputs"]:
            # A source that cannot be hashed before it runs is addressed by what it read.
            step.components["extra"] = {**step.components["extra"], "read": {
                p: o["sha256"] for p, o in sorted(result.get("outputs", {}).items())}}
            step.key = cache.cache_key(step.components)
        final = self.state.artifact_dir(step.name, step.key)
        self.state.entry_path(step.name, step.key).unlink(missing_ok=True)
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        result = _replace_prefix(result, str(staging), str(final))
        cache.write_entry(self.state, step.name, step.node.kind, step.key, step.components,
                          result, self.run_id, step.observed)
        step.status, step.result, step.ended_at = "ok", result, time.time()
        self.observe("done", step.name, {"result": result, "duration": step.duration})
        self._save("running")

    # ---------------------------------------------------------------- MLflow and the record
    def _start_mlflow(self, first_step: StepState) -> None:
        """The MLflow parent run starts with the first step that executes: a fully cached run
        creates no MLflow run (and never imports MLflow).

        The workers' zygote imports, in order: what opening the run and the first step need, then
        what every other step to run needs. The first worker is forked after the first group and
        opens the MLflow run while the zygote goes on with the second; workers forked later
        start with everything imported."""
        if self.mlflow_started:
            return
        self.mlflow_started = True
        uri = self.context["tracking_uri"]
        self.observe("mlflow", "", {"tracking_uri": uri})
        unreachable = registry_lookup.unreachable(uri)
        if unreachable:   # MLflow's client would retry for minutes before saying so
            raise StepError(f"cannot reach the MLflow tracking server: {unreachable}",
                            expected="a running MLflow server at MLFLOW_TRACKING_URI", found=uri)
        self.pool.preload(tracking_modules(uri) + warm_modules(first_step.node))
        # An idle worker of a shared pool has the store open and its modules imported.
        first = self.pool.idle_worker(tracking_modules(uri)) or self.pool.start_worker()
        todo = [n for n in self.order if self.steps[n].status in ("pending", "ready")]
        self.pool.preload(tuple(m for n in todo for m in warm_modules(self.steps[n].node)) + REPORT_MODULES)
        self._start_parallel_workers(todo)
        answer = self.pool.call("mlopsc.runtime.tracking:start_pipeline_run", self.context,
                                log=self.state.log_path(self.run_id, "_tracking"), worker=first)
        if not answer["ok"]:   # a store that cannot be opened is the user's to fix, not a bug
            raise StepError(f"cannot open the pipeline's MLflow run: {answer['error']['message']}",
                            expected="a reachable MLflow store (MLFLOW_TRACKING_URI, else mlflow.db in the "
                                     "state folder)", found=self.context["tracking_uri"])
        self.context["parent_run_id"] = answer["result"]

    def _start_parallel_workers(self, todo: list[str]) -> None:
        """When branches of the steps still to run can go in parallel, fork their workers now, so
        that they are ready (everything imported) when the branches are."""
        sorter = graphlib.TopologicalSorter({n: [d for d in self.steps[n].deps if d in todo] for n in todo})
        sorter.prepare()
        width = 0
        while sorter.is_active():
            ready = sorter.get_ready()
            width = max(width, len(ready))
            sorter.done(*ready)
        while len(self.pool.workers) < min(self.pool.size, width):
            self.pool.start_worker()

    def _finish(self, status: str) -> None:
        for step in self.steps.values():
            if step.status in ("running", "ready", "pending"):   # interrupted: workers are killed below
                step.status = "not_run"
                step.reason = "interrupted" if status == "interrupted" else "the run stopped before it"
        self._save(status)
        log = self.state.log_path(self.run_id, "_tracking")
        parent = self.context["parent_run_id"]
        try:
            if parent and self.options.record_lineage and status != "interrupted":
                # Cached steps' results too: the deployed model's data and metrics are part of
                # this run's lineage even when they were computed by an earlier run.
                results = [self.steps[n].result for n in self.order if self.steps[n].result]
                cached = [n for n in self.order if self.steps[n].status == "cached"]
                self.pool.call("mlopsc.runtime.lineage:record_run", self.context, results,
                               {"backend": "local", "cached_steps": cached}, log=log)
            if status != "interrupted":
                self.report, self.report_error = write_run_report(self.pool, self.state, self.context,
                                                                  self.record(status))
                self._save(status)
            if parent:
                self.pool.call("mlopsc.runtime.tracking:end_pipeline_run", self.context, status, log=log)
        except RuntimeError:
            pass   # bookkeeping after the run; the run record still says what happened

    def exit_code(self) -> int:
        step = self.failure
        if self.error is not None:
            return EXIT["step"]
        if step is None:
            return EXIT["ok"]
        error = step.error or {}
        if error.get("type") == "failed":
            return EXIT["gate" if error.get("reason") == "gate" else "check"]
        if error.get("type") == "unavailable":
            return EXIT["usage"]
        return EXIT["internal"] if error.get("type") == "internal" else EXIT["step"]

    def record(self, status: str) -> dict[str, Any]:
        steps = {}
        for name in self.order:
            s = self.steps[name]
            steps[name] = {
                "kind": s.node.kind, "status": s.status, "reason": s.reason, "key": s.key,
                "cache_hit": s.status == "cached", "attempts": s.attempt,
                "duration": round(s.duration, 3), "selected": s.selected,
                "started_at": s.started_at, "ended_at": s.ended_at,
                "result": s.result, "error": s.error,
                "line": s.node.span.line if s.node.span else None,
            }
        return {
            "run_id": self.run_id, "pipeline": self.pipeline.name, "spec": self.spec_path,
            "spec_hash": self.pipeline.spec_hash, "params": self.params, "status": status,
            "exit_code": self.exit_code() if status != "interrupted" else EXIT["interrupted"],
            "started": self.started, "duration": round(time.time() - self.started, 3),
            "order": self.order, "steps": steps, "state_dir": str(self.state.root),
            "tracking_uri": self.context["tracking_uri"],
            "mlflow_run_id": self.context["parent_run_id"], "options": self.options.extra,
            "error": self.error, "graph": self.layout["graph"], "deploys": self.layout["deploys"],
            "report": self.report, "report_error": self.report_error,
        }

    def _save(self, status: str) -> None:
        write_json_atomic(self.state.run_path(self.run_id), self.record(status), durable=False)


def cached_result(state: StateDir, entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry["result"], "outputs": cache.entry_outputs(state, entry)}


def _replace_prefix(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return re.sub("^" + re.escape(old), new.replace("\\", "\\\\"), value)
    if isinstance(value, dict):
        return {k: _replace_prefix(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_prefix(v, old, new) for v in value]
    return value


def worker_pool(options: RunOptions, run_id: str) -> WorkerPool:
    """The workers of a run; their zygote's and workers' logs go to `logs/<run_id>/`."""
    return WorkerPool(options.jobs or os.cpu_count() or 1, StateDir(options.state_dir).root / "logs" / run_id)


def run_steps(pipeline: dict[str, Any], selected: list[str], params: dict[str, Any], spec_path: str,
              options: RunOptions, observer: Observer | None = None, pool: WorkerPool | None = None) -> dict[str, Any]:
    """Run `selected` (and serve their upstream from the cache); return the run record. With
    `pool`, the steps run in its workers and it stays open for the caller's next run; else the
    run starts its own and closes it."""
    return Runner(pipeline, selected, params, spec_path, options, observer, pool).run()
