"""What the backends call: the part of the spec a report needs beside a run record, the record
of a Kubeflow or Prefect run built from its step results, and writing the report and logging it
as an artifact of the pipeline's MLflow run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .render import write_report

if TYPE_CHECKING:
    from mlopsc.compiler import ir
    from mlopsc.runtime.core import RunContext


def layout_of(steps: Iterable[ir.Step]) -> dict[str, Any]:
    """Each step's kind, spec line and references (`graph`: step -> [[field, producer, port]]), and
    each deploy's registry and alias: what the run record lacks and a report draws."""
    steps = list(steps)
    return {"graph": {s.name: [[f, ref.step, ref.port] for f, ref in s.refs()] for s in steps},
            "deploys": {s.name: {"registry": s.registry, "alias": s.alias} for s in steps if s.kind == "deploy"},
            "steps": {s.name: {"kind": s.kind, "line": s.span.line if s.span else None} for s in steps}}


def record_from_results(ctx: RunContext, results: dict[str, dict[str, Any]], layout: dict[str, Any], *,
                        backend: str, order: list[str], status: str, statuses: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None, started: float | None = None) -> dict[str, Any]:
    """A run record of the local runner's shape from a remote run's StepResults (in `order`).
    A step without a result did not run: `statuses` says why (failed, skipped), else not_run."""
    steps = {}
    for name in order:
        result = results.get(name)
        info = layout["steps"].get(name, {})
        step_status = (statuses or {}).get(name) or ("ok" if result else "not_run")
        message = (errors or {}).get(name)
        steps[name] = {"kind": info.get("kind") or (result or {}).get("kind", ""), "status": step_status,
                       "reason": "", "duration": (result or {}).get("duration"), "attempts": 1 if result else 0,
                       "line": info.get("line"), "result": result,
                       "error": {"message": message} if message else None}
    return {"run_id": ctx.run_id, "pipeline": ctx.pipeline, "spec": ctx.spec_path, "spec_hash": ctx.spec_hash,
            "params": dict(ctx.params), "status": status, "backend": backend, "order": order, "steps": steps,
            "started": started, "duration": round(time.time() - started, 3) if started else None,
            "tracking_uri": ctx.tracking_uri, "mlflow_run_id": ctx.parent_run_id,
            "graph": layout["graph"], "deploys": layout["deploys"], "error": None}


def report_run(ctx: RunContext, record: dict[str, Any], path: str, cache_dir: str | None,
               draw: bool = True) -> str:
    """Write the report of `record` to `path` and log it as `report.html` of the pipeline's MLflow
    run when there is one. Returns the path. (A worker calls it as `report_run(ctx, ...)`.)"""
    written = write_report(record, path, cache_dir, draw=draw)
    if ctx.parent_run_id:
        log_to_mlflow(ctx, str(written))
    return str(written)


def report_remote_run(ctx: RunContext, record: dict[str, Any], target: str, cache_dir: str | None = None) -> str:
    """A Kubeflow or Prefect run's report: written locally, logged to MLflow, then copied to
    `target` (a path, or any fsspec URI such as s3://bucket/run/report.html). Returns its sha256."""
    import hashlib

    with tempfile.TemporaryDirectory(prefix="mlopsc-report-") as folder:
        local = report_run(ctx, record, os.path.join(folder, "report.html"), cache_dir)
        with open(local, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        if "://" in target and not target.startswith("file://"):
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(target)
            fs.put_file(local, path)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            shutil.copyfile(local, target.removeprefix("file://"))
    return digest


def log_to_mlflow(ctx: RunContext, path: str) -> None:
    from mlopsc.runtime import tracking

    if os.path.basename(path) != "report.html":     # MLflow names the artifact after the file
        raise ValueError(f"the report to log must be called report.html, not {os.path.basename(path)}")
    tracking.client(ctx).log_artifact(ctx.parent_run_id, path)
