"""What generated Prefect flows call on the worker: open a pipeline run, run one step as a task,
close the run. The pipeline semantics are the runtime's (artifacts, param binding, tracking,
gate verdicts, lineage), so that a spec gives the same results here as on the local runner.

- `start_run` binds the run to the flow run: run id = Prefect flow run id, artifacts under
  `{storage}/{flow_run_id}/{step}/`, one MLflow parent run.
- `run_step` calls `mlopsc.runtime.execute`. A StepError (bad data, a failing fit) becomes a
  Failed task state named `StepError`, retried per the task's `retries`; a StepFailed verdict
  (a check with on_fail = stop, a gate that did not pass) a Failed state named `CheckFailed` or
  `GateFailed`, never retried. Either way the message (step, spec line, reasons) is logged
  without a traceback; steps downstream of it do not run. A step that succeeds logs its
  notes (what it did to the data as the spec asked) and warnings, as the local summary shows them.
- `finish_run` waits for every task, records lineage, writes the run's HTML report
  (`{storage}/{flow_run_id}/report.html`, logged to the MLflow run, linked from a Prefect link
  artifact `mlopsc-report-<pipeline>`), closes the MLflow run and ends the flow run Failed (with
  the failing steps' messages) or returns the step results. A monitor's `retrain` verdict starts
  the training deployment with `run_deployment`.

Secrets: `secret("NAME")` is read by the runtime from an environment variable
(`runtime.params.env_name`); when the worker lacks that variable, `run_step` loads the Prefect
Secret block NAME (lower-cased, `_` and `.` as `-`) into it for this process. Values are never
logged or returned.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from mlopsc.compiler import ir

VERDICTS = {"check": "CheckFailed", "gate": "GateFailed"}


@dataclass
class PipelineRun:
    context: dict[str, Any]
    steps: dict[str, ir.Step]
    root: str                          # {storage}/{flow_run_id}
    storage: str = ""                  # the flow's `storage` parameter as given ("" = the default)
    started: float = 0.0               # wall clock, for the report

    def outputs(self, name: str) -> dict[str, str]:
        from mlopsc.runtime.artifacts import output_uris

        return output_uris(f"{self.root}/{name}", self.steps[name])

    def uri(self, name: str, port: str) -> str:
        """Where step `name` of this run writes its output `port`."""
        return self.outputs(name)[port]


def default_storage(spec_file: str) -> str:
    from mlopsc.runtime.state_folder import state_folder

    return os.environ.get("MLOPSC_STORAGE") or os.path.join(
        state_folder(os.path.dirname(os.path.abspath(spec_file))), "prefect")


def start_run(pipeline: str, spec_file: str, spec_hash: str, step_configs: dict[str, dict[str, Any]],
              params: dict[str, Any], storage: str = "", force_gate: bool = False) -> PipelineRun:
    from mlopsc.runtime import RunContext, StepError
    from mlopsc.runtime.tracking import start_pipeline_run
    from prefect import get_run_logger
    from prefect.runtime import flow_run

    spec_file = os.environ.get("MLOPSC_SPEC_FILE") or spec_file
    run_id = str(flow_run.id)
    root = f"{(storage or default_storage(spec_file)).rstrip('/')}/{run_id}"
    ctx = RunContext(pipeline=pipeline, run_id=run_id, params=dict(params), spec_path=spec_file,
                     spec_hash=spec_hash, artifact_root=root, force_gate=force_gate,
                     forced_by=f"prefect flow run {run_id}" if force_gate else None)
    quiet_tracebacks()
    try:
        ctx.parent_run_id = start_pipeline_run(ctx)
    except Exception as exc:  # noqa: BLE001 - MLflow's errors vary by store; the message is what matters
        raise StepError(f"cannot open the pipeline's MLflow run: {type(exc).__name__}: {exc}",
                        expected="a reachable MLflow store (MLFLOW_TRACKING_URI in the worker's environment)") from None
    get_run_logger().info("pipeline %s: artifacts under %s", pipeline, root)
    steps = {name: ir.step_from_json(config) for name, config in step_configs.items()}
    return PipelineRun(context=ctx.to_dict(), steps=steps, root=root, storage=storage, started=time.time())


class _NoTraceback(logging.Filter):
    """Users read messages, not tracebacks. Prefect logs a failed task state with exc_info=True even
    when no exception is involved (a step that returned a Failed state: a bare `NoneType: None`
    line), and a flow's exception with its traceback; a StepError's message already says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        from mlopsc.runtime import StepError

        kind = record.exc_info[0] if record.exc_info else None
        if record.exc_info and (kind is None or issubclass(kind, StepError)):
            record.exc_info = None
        return True


def quiet_tracebacks() -> None:
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTraceback) for f in logger.filters):
            logger.addFilter(_NoTraceback())


def retry_unless_verdict(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failing step, but not a check or gate that decided to stop the pipeline."""
    return state.name not in VERDICTS.values()


def run_step(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str], context: dict[str, Any]) -> Any:
    from mlopsc.runtime import StepError, StepFailed, execute
    from prefect import get_run_logger
    from prefect.states import Failed

    node = ir.step_from_json(config)
    logger = get_run_logger()
    started = time.monotonic()
    try:
        load_secret_blocks(node)
        result = execute(node, inputs, outputs, context)
    except StepFailed as exc:
        logger.error("%s", exc)
        if exc.reason == "gate":
            logger.info("on Prefect, the flow parameter force_gate=true is what --force-gate is to `mlopsc run`")
        return Failed(message=str(exc), name=VERDICTS.get(exc.reason, "StepError"), data=exc.result or {})
    except StepError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc), name="StepError", data={})
    result["duration"] = round(time.monotonic() - started, 3)
    if result.get("status") == "warn":
        logger.warning("%s %s finished with warnings", node.kind, node.name)
    for note in result.get("notes") or []:
        logger.info("%s %s: %s", node.kind, node.name, note)
    for warning in result.get("warnings") or []:
        logger.warning("%s %s: %s", node.kind, node.name, warning)
    return result


# ---------------------------------------------------------------- secrets


def block_name(ref: ir.SecretRef) -> str:
    """Prefect block names are lower-case slugs: `db.creds_v2` -> `db-creds-v2`."""
    return re.sub(r"[^a-z0-9-]", "-", ref.name.lower())


def load_secret_blocks(node: ir.Step) -> None:
    """Set the variable of each secret() of `node` that the worker's environment lacks from the
    Prefect Secret block of that name, if there is one (else the runtime reports it missing)."""
    from mlopsc.backends.base import references
    from mlopsc.runtime.params import env_name

    for ref in references(node):
        if not isinstance(ref, ir.SecretRef):
            continue
        var = env_name(ref)
        if os.environ.get(var):
            continue
        value = _secret_block_value(block_name(ref))
        if isinstance(value, dict) and ref.key:
            value = value.get(ref.key)
        if isinstance(value, (str, int, float)):
            os.environ[var] = str(value)


def _secret_block_value(name: str) -> Any:
    from prefect.blocks.system import Secret

    try:
        return Secret.load(name).get()
    except ValueError:   # no block of that name
        return None


# ---------------------------------------------------------------- the end of a run


def finish_run(run: PipelineRun, steps: dict[str, Any], retrain_deployment: str | None = None) -> Any:
    from mlopsc.runtime import RunContext
    from mlopsc.runtime.lineage import record_run
    from mlopsc.runtime.tracking import end_pipeline_run
    from prefect import get_run_logger
    from prefect.states import Failed

    logger = get_run_logger()
    results: dict[str, dict[str, Any]] = {}
    failures: list[Any] = []
    not_run: list[str] = []
    statuses: dict[str, str] = {}
    for name, future in steps.items():
        future.wait()
        state = future.state
        if state.is_completed():
            results[name], statuses[name] = future.result(), "ok"
        elif state.is_failed():
            failures.append(state)
            statuses[name] = "failed"
            verdict = future.result(raise_on_failure=False)
            if isinstance(verdict, dict) and verdict:
                results[name] = verdict   # a check or gate's own result: lineage records it
        else:
            not_run.append(name)
            statuses[name] = "skipped"
    ctx = RunContext.from_any(run.context)
    status = "failed" if failures else "warn" if any(r.get("status") == "warn" for r in results.values()) else "ok"
    try:
        record_run(ctx, list(results.values()), {"backend": "prefect", "flow_run_id": ctx.run_id,
                                                 "artifacts": run.root})
        end_pipeline_run(ctx, status)
    except Exception as exc:  # noqa: BLE001 - bookkeeping after the steps must not hide their outcome
        logger.warning("lineage or MLflow run not recorded: %s: %s", type(exc).__name__, exc)
    report = write_report(run, ctx, results, statuses, {n: f.state.message for n, f in steps.items()
                                                        if statuses[n] == "failed"}, status, logger)
    if not_run:
        logger.info("not run, because a step they depend on did not complete: %s", ", ".join(not_run))
    summary = {"run_id": ctx.run_id, "status": status, "artifacts": run.root, "mlflow_run_id": ctx.parent_run_id,
               "report": report, "steps": results}
    if failures:
        # Named after the first verdict, so that `mlopsc submit --wait` exits 3 / 4 / 5 like `mlopsc run`.
        name = next((s.name for s in failures if s.name in VERDICTS.values()), "Failed")
        return Failed(name=name, data=summary, message=f"pipeline {ctx.pipeline} failed:\n" + "\n".join(
            s.message or "a step failed" for s in failures))
    if retrain_deployment:
        # Like `mlopsc monitor`: the training pipeline again, with this run's params.
        parameters = {**ctx.params, **({"storage": run.storage} if run.storage else {})}
        start_retraining(results, retrain_deployment, parameters, ctx.run_id, logger)
    return summary


def write_report(run: PipelineRun, ctx: Any, results: dict[str, dict[str, Any]], statuses: dict[str, str],
                 errors: dict[str, str | None], status: str, logger: Any) -> str | None:
    """The run's HTML report at `{root}/report.html`, logged to the MLflow run and linked from a
    Prefect artifact; its URI, or None (a warning in the flow's log) when it cannot be written."""
    from mlopsc.runtime.report import layout_of, record_from_results, report_remote_run
    from prefect.artifacts import create_link_artifact

    target = f"{run.root}/report.html"
    local_root = "://" not in run.root or run.root.startswith("file://")
    figures = os.path.join(os.path.dirname(run.root.removeprefix("file://")), "report-figures") \
        if local_root else None
    try:
        record = record_from_results(ctx, results, layout_of(run.steps.values()), backend="prefect",
                                     order=list(statuses), status=status, statuses=statuses,
                                     errors={n: e for n, e in errors.items() if e}, started=run.started)
        report_remote_run(ctx, record, target, figures)
        link = f"file://{os.path.abspath(target.removeprefix('file://'))}" if local_root else target
        key = "mlopsc-report-" + re.sub("[^a-z0-9-]", "-", ctx.pipeline.lower())   # Prefect's key alphabet
        create_link_artifact(link, link_text="report.html", key=key,
                             description=f"mlopsc report of pipeline {ctx.pipeline}, run {ctx.run_id}: {status}")
    except Exception as exc:  # noqa: BLE001 - the run's outcome stands without its report
        logger.warning("the run's report was not written: %s: %s", type(exc).__name__, exc)
        return None
    logger.info("report: %s", link)
    return target


def start_retraining(results: dict[str, dict[str, Any]], deployment: str, parameters: dict[str, Any],
                     run_id: str, logger: Any) -> None:
    """A monitor whose retrain rules fired (`{"retrain": true, "reasons": [...]}`) starts a run of
    the training deployment, without waiting for it: it is a run of its own, on its own worker."""
    from prefect.deployments import run_deployment

    reasons = [reason for r in results.values() if r.get("kind") == "monitor" and r.get("retrain")
               for reason in r.get("reasons") or ["drift"]]
    if not reasons:
        return
    started = run_deployment(deployment, parameters=parameters, timeout=0,
                             tags=["mlopsc", "retrain", f"retrain-of:{run_id}"])
    logger.info("retraining: started flow run %s of deployment %s, because %s",
                started.id, deployment, "; ".join(map(str, reasons)))
