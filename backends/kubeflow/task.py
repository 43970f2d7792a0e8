"""What a generated Kubeflow component calls, inside its container.

Generated components stay thin: each passes its step's config, its kfp artifacts and the run
context here, and this module does the rest with `mlopsc.runtime`:

- kfp hands a component local paths (`artifact.path`) without file suffixes or sidecars; the
  runtime reads and writes `{base}/{port}{suffix}` with a `.sha256` sidecar beside it. Inputs are
  copied into a scratch folder under their runtime names (sidecar from the producer's artifact
  metadata), the runtime writes its outputs there, and each output is moved onto its kfp path with
  its sha256 in `artifact.metadata["sha256"]` (KFP records artifact metadata; a sidecar file would
  not be uploaded).
- A StepFailed (a check with on_fail = stop, a gate that did not pass) or a StepError ends the
  task with one message naming the step and its spec line, and the CLI's exit code; no traceback.

Imports: stdlib and `mlopsc.runtime` only (kfp's artifact objects arrive as arguments); kfp is
imported by `request_retrain` alone, which the monitor pipeline's image has anyway.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

# kfp artifact schema -> the file suffix the runtime expects (ir.PORT_SUFFIX by port type)
SUFFIX = {"system.Dataset": ".parquet", "system.Model": "", "system.Metrics": ".json", "system.Artifact": ".json"}
# StepFailed.reason -> exit status, as `mlopsc run` exits (backends/cli.py EXIT)
EXIT = {"check": 3, "gate": 4, "step": 5}
# Where a component finds the KFP API when the monitor's retrain action fires (in-cluster default).
IN_CLUSTER_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


def start_run(pipeline: dict[str, str], params: dict[str, Any], spec_dir: str, tracking_uri: str,
              force_gate: bool, run_id: str) -> str:
    """Open the run's MLflow parent run; return the RunContext (JSON) every step receives.
    A forced gate is recorded as forced by this KFP run (the pod does not know who started it)."""
    from mlopsc.runtime import RunContext
    from mlopsc.runtime.tracking import start_pipeline_run

    ctx = RunContext(pipeline=pipeline["name"], run_id=run_id, params=dict(params),
                     spec_path=os.path.join(spec_dir, pipeline["spec_file"]), spec_hash=pipeline["spec_hash"],
                     tracking_uri=tracking_uri or None, force_gate=bool(force_gate),
                     forced_by=f"kubeflow run {run_id}" if force_gate else None)
    ctx.parent_run_id = _guard("start", lambda: start_pipeline_run(ctx), doing="open the MLflow run")
    return json.dumps(ctx.to_dict(), sort_keys=True)


def run_step(step: dict[str, Any], context: str, inputs: dict[str, Any], outputs: dict[str, Any],
             summary: Any = None) -> str:
    """Run one step on kfp artifacts; return its StepResult as JSON (the task's `Output`)."""
    from mlopsc.compiler import ir
    from mlopsc.runtime import RunContext, StepError, StepFailed, execute
    from mlopsc.runtime.artifacts import output_uris

    node = _guard("config", lambda: ir.step_from_json(step), doing="read the step's config")
    ctx = _guard(node.name, lambda: RunContext.from_any(json.loads(context)), doing="read the run context")
    work = tempfile.mkdtemp(prefix=f"mlopsc-{node.name}-")
    try:
        in_uris = _guard(node.name, lambda: {name: _stage_input(artifact, os.path.join(work, "in", name))
                                             for name, artifact in inputs.items()}, doing="read its inputs")
        out_uris = output_uris(os.path.join(work, "out"), node)
        started = time.monotonic()
        try:
            result = execute(node, in_uris, out_uris, ctx)
        except StepFailed as exc:
            # The verdict (its reasons are in the message, the report in MLflow): fail the task so
            # nothing downstream runs. KFP uploads no output of a failed task.
            _fail(exc, EXIT.get(exc.reason, EXIT["step"]))
        except StepError as exc:
            _fail(exc, EXIT["step"])
        result["duration"] = round(time.monotonic() - started, 3)
        _guard(node.name, lambda: _publish_all(node, out_uris, outputs, result), doing="write its outputs")
        _log_notes(node, result)
        _write_summary(summary, node.name, result)
        return json.dumps(result, sort_keys=True, default=str)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def finish_run(context: str, results: dict[str, str], layout: dict[str, Any] | None = None,
               report: Any = None) -> None:
    """Record the run's lineage from every step's result, write the run's HTML report onto the
    `report` artifact (kfp's HTML type, which the KFP UI renders) and close the MLflow parent run.
    A report that cannot be written is a line in the task's log, not a failed run."""
    from mlopsc.runtime import RunContext

    ctx = RunContext.from_any(json.loads(context))
    loaded = {name: json.loads(text) for name, text in results.items()}   # in pipeline order
    status = "warn" if any(r.get("status") == "warn" for r in loaded.values()) else "ok"

    def lineage() -> None:
        from mlopsc.runtime.lineage import record_run

        record_run(ctx, list(loaded.values()), {"backend": "kubeflow"})

    _guard("lineage", lineage, doing="record the lineage")
    if report is not None and layout is not None:
        try:
            from mlopsc.runtime.report import record_from_results, report_remote_run

            record = record_from_results(ctx, loaded, layout, backend="kubeflow", order=list(loaded), status=status)
            report.metadata["sha256"] = report_remote_run(ctx, record, report.path)
        except Exception as exc:  # noqa: BLE001 - the run's outcome stands without its report
            print(f"mlopsc: the run's report was not written: {type(exc).__name__}: {exc}", file=sys.stderr)

    def close() -> None:
        from mlopsc.runtime.tracking import end_pipeline_run

        end_pipeline_run(ctx, status)

    _guard("end", close, doing="close the MLflow run")


def end_failed_run(pipeline: dict[str, str], spec_dir: str, tracking_uri: str, run_id: str, state: str) -> None:
    """The exit handler: close the MLflow parent run of a run that did not succeed. KFP lets an
    exit task depend on no other task, so the parent run is found by its `mlopsc.run_id` tag."""
    if state.upper() in ("SUCCEEDED", "SUCCESS") or not run_id.replace("-", "").isalnum():
        return
    from mlopsc.runtime import RunContext
    from mlopsc.runtime.tracking import client, configure, end_pipeline_run

    ctx = RunContext(pipeline=pipeline["name"], run_id=run_id, spec_hash=pipeline["spec_hash"],
                     spec_path=os.path.join(spec_dir, pipeline["spec_file"]), tracking_uri=tracking_uri or None)

    def close() -> None:
        runs = client(ctx).search_runs(
            [configure(ctx)], filter_string=f"tags.`mlopsc.run_id` = '{run_id}' and attributes.status = 'RUNNING'")
        for run in runs:
            if "mlflow.parentRunId" not in run.data.tags:
                ctx.parent_run_id = run.info.run_id
                end_pipeline_run(ctx, "failed")

    _guard("end", close, doing="close the MLflow run")


def request_retrain(result: str, package_path: str, pipeline: str, host: str, experiment: str) -> str:
    """The monitor's `retrain` action: start a run of the training pipeline through the KFP API.

    host: the task's argument, else env MLOPSC_KFP_HOST, else the in-cluster API service."""
    if json.loads(result).get("retrain") is not True:   # runtime.monitor's verdict
        print("mlopsc: no drift rule asked for a retrain")
        return ""
    host = host or os.environ.get("MLOPSC_KFP_HOST") or IN_CLUSTER_HOST

    def start() -> str:
        import kfp

        client = kfp.Client(host=host)
        run = client.create_run_from_pipeline_package(
            package_path, arguments={}, run_name=f"{pipeline} (retrain)", experiment_name=experiment or None)
        print(f"mlopsc: retrain requested: run {run.run_id} of pipeline {pipeline} on {host}")
        return run.run_id

    return _guard("retrain", start, doing=f"start a run of {pipeline} at {host}")


# ---------------------------------------------------------------- artifacts


def _stage_input(artifact: Any, base: str) -> str:
    """Copy a kfp input under the name the runtime reads; its producer's sha256 as the sidecar.
    A copy, not a symlink: MLflow refuses to log artifacts that resolve outside its store, and
    a step must never be able to change its producer's output."""
    staged = base + SUFFIX.get(type(artifact).schema_title, "")
    os.makedirs(os.path.dirname(staged), exist_ok=True)
    if os.path.isdir(artifact.path):
        shutil.copytree(artifact.path, staged)
    else:
        shutil.copyfile(artifact.path, staged)
    digest = (artifact.metadata or {}).get("sha256")
    if digest:
        with open(f"{staged}.sha256", "w", encoding="utf-8") as fh:
            fh.write(f"{digest}\n")
    return staged


def _publish_all(node: Any, uris: dict[str, str], outputs: dict[str, Any], result: dict[str, Any]) -> None:
    """Every output onto its kfp artifact; the result then names the kfp URIs."""
    for port, artifact in outputs.items():
        digest = _publish(uris[port], artifact)
        result.setdefault("outputs", {})[port] = {"uri": artifact.uri, "sha256": digest, "type": node.OUTPUTS[port]}
        if type(artifact).schema_title == "system.Metrics":
            _log_metrics(artifact, result)


def _publish(uri: str, artifact: Any) -> str:
    """Move a runtime output onto its kfp path (file or MLflow model folder); return its sha256."""
    from mlopsc.runtime.artifacts import sha256_of

    digest = sha256_of(uri)
    target = artifact.path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(target):
        shutil.rmtree(target)
    elif os.path.exists(target):
        os.remove(target)
    shutil.move(uri, target)
    artifact.metadata["sha256"] = digest
    return digest


def _log_metrics(artifact: Any, result: dict[str, Any]) -> None:
    """Scalar metrics on the kfp Metrics artifact, so the KFP UI shows them."""
    for name, value in sorted((result.get("metrics") or {}).items()):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            artifact.log_metric(name, float(value))


def _log_notes(node: Any, result: dict[str, Any]) -> None:
    """The task log's lines for what the step did that its user should know of though it succeeded
    (the StepResult, the task's output, holds them too), as the local summary shows them."""
    for note in result.get("notes") or []:
        print(f"mlopsc: {node.kind} {node.name}: {note}", file=sys.stderr, flush=True)
    for warning in result.get("warnings") or []:
        print(f"mlopsc: warning: {node.kind} {node.name}: {warning}", file=sys.stderr, flush=True)


def _write_summary(summary: Any, step: str, result: dict[str, Any]) -> None:
    """A Markdown view of a report step's result for the KFP UI (the JSON report is the artifact)."""
    if summary is None:
        return
    lines = [f"# {step}", "", "| key | value |", "| --- | --- |"]
    for key, value in sorted(result.items()):
        if key == "outputs":
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        lines.append(f"| {key} | {text.replace('|', '/')} |")
    os.makedirs(os.path.dirname(summary.path), exist_ok=True)
    with open(summary.path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- failures


def _fail(exc: BaseException, code: int) -> None:
    print(f"mlopsc: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _guard(label: str, action: Any, *, doing: str | None = None) -> Any:
    """Run `action`; any error ends the task with one line instead of a traceback."""
    from mlopsc.runtime import StepError

    try:
        return action()
    except StepError as exc:
        _fail(exc, EXIT["step"])
    except Exception as exc:  # noqa: BLE001 - a task's log shows one message, not a traceback
        _fail(RuntimeError(f"{label}: cannot {doing or 'finish'}: {type(exc).__name__}: {exc}"), EXIT["step"])
