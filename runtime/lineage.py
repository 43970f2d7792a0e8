"""Lineage: which spec, code and data produced a pipeline run and the model it deployed.

Every backend calls `record_run(ctx, results, program_info)` once at the end of a pipeline run,
with the StepResults of the steps that ran (a failed gate's result included). The record is
written three times, for three kinds of reader:
- `lineage.json`, an artifact of the pipeline's parent MLflow run: the whole record;
- tags `mlopsc.lineage.*` on that run: spec hash, git commit, dataset hashes, deployed versions;
- tags on each model version the run deployed: `mlopsc.lineage.run` (where lineage.json is),
  spec hash, git commit, dataset hashes `mlopsc.dataset.<step>.<port>`, the gate's verdict, and
  the evaluate metrics of that very model as `mlopsc.metric.<name>` — the numbers a later gate
  compares with when this version is the champion (registry.version_metrics).

An evaluate step's metrics belong to a deployed version when its Metrics JSON names the same
model sha256; when no evaluate step records a model hash and there is exactly one, it is used.
"""
from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from typing import Any

from . import artifacts
from .core import RunContext

TAG_LIMIT = 5000   # MLflow accepts 8000 characters per tag value; stay well below


def record_run(ctx: RunContext, results: list[dict[str, Any]],
               program_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the run's lineage record, write it to MLflow (see the module docstring), return it."""
    record = build_record(ctx, results, program_info)
    _write(ctx, record)
    return record


def build_record(ctx: RunContext, results: list[dict[str, Any]],
                 program_info: dict[str, Any] | None = None) -> dict[str, Any]:
    from mlopsc.runtime import __version__

    record: dict[str, Any] = {
        "pipeline": ctx.pipeline, "run_id": ctx.run_id, "mlflow_run_id": ctx.parent_run_id,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spec": {"path": os.path.abspath(ctx.spec_path) if ctx.spec_path else None, "sha256": ctx.spec_hash},
        "git": git_info(ctx.spec_path), "params": dict(ctx.params),
        "runtime": {"mlopsc": __version__, **_library_versions()},
        "steps": [{"step": r.get("step"), "kind": r.get("kind"), "status": r.get("status")} for r in results],
        "datasets": {}, "models": {}, "artifacts": {}, "metrics": {}, "gates": {}, "deployments": [],
        "program": program_info or {},
    }
    for result in results:
        step, kind = result.get("step"), result.get("kind")
        for port, artifact in (result.get("outputs") or {}).items():
            key = f"{step}.{port}"
            record["artifacts"][key] = artifact
            if artifact.get("type") == "Dataset":
                record["datasets"][key] = artifact.get("sha256")
            elif kind == "train":
                record["models"][key] = {"sha256": artifact.get("sha256"),
                                         "mlflow_run_id": result.get("mlflow_run_id")}
        if kind == "evaluate":
            record["metrics"][step] = _evaluation(result)
        elif kind == "gate":
            record["gates"][step] = result.get("decision", {})
        elif kind == "deploy":
            record["deployments"].append({k: result.get(k) for k in (
                "step", "registry", "version", "alias", "previous_version", "model_sha256")})
    for deployment in record["deployments"]:
        deployment["metrics"] = _metrics_of(deployment.get("model_sha256"), record["metrics"])
    return record


def git_info(spec_path: str) -> dict[str, Any] | None:
    """The commit checked out where the spec lives, and whether the spec differs from it; None
    outside a git work tree or without git."""
    folder = os.path.dirname(os.path.abspath(spec_path)) if spec_path else os.getcwd()
    if not os.path.isdir(folder):
        return None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changes = git("status", "--porcelain", "--", os.path.abspath(spec_path)) if spec_path else None
    return {"commit": commit, "spec_modified": bool(changes)}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("scikit-learn", "mlflow", "pandas"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _evaluation(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluate step's metrics and model hash, from its Metrics JSON when it can be read."""
    document: dict[str, Any] = {}
    uri = (result.get("outputs") or {}).get("metrics", {}).get("uri")
    if uri:
        try:
            document = artifacts.read_json(uri)
        except (OSError, ValueError):
            document = {}   # the artifact store is gone: keep what the result carries
    return {"metrics": document.get("metrics") or result.get("metrics") or {},
            "model_sha256": document.get("model_sha256") or result.get("model_sha256"),
            "data_sha256": document.get("data_sha256") or result.get("data_sha256")}


def _metrics_of(model_sha256: str | None, evaluations: dict[str, dict[str, Any]]) -> dict[str, float]:
    same = [e["metrics"] for e in evaluations.values() if model_sha256 and e.get("model_sha256") == model_sha256]
    if not same and len(evaluations) == 1 and not any(e.get("model_sha256") for e in evaluations.values()):
        same = [e["metrics"] for e in evaluations.values()]
    merged: dict[str, float] = {}
    for metrics in same:
        merged.update(metrics)
    return merged


def _write(ctx: RunContext, record: dict[str, Any]) -> None:
    from . import tracking

    client = tracking.client(ctx)
    run_id = ctx.parent_run_id
    if run_id is None:   # a backend that opened no parent run: give the record a run of its own
        experiment_id = tracking.configure(ctx)
        run_id = client.create_run(experiment_id, run_name=f"{ctx.pipeline}-{ctx.run_id}-lineage",
                                   tags={"mlopsc.pipeline": ctx.pipeline, "mlopsc.run_id": ctx.run_id}).info.run_id
        client.set_terminated(run_id)
    record["mlflow_run_id"] = run_id
    client.log_dict(run_id, record, "lineage.json")
    common = {"mlopsc.spec_hash": ctx.spec_hash or "", "mlopsc.git_commit": (record["git"] or {}).get("commit", "")}
    tags = {**{k.replace("mlopsc.", "mlopsc.lineage."): v for k, v in common.items()},
            "mlopsc.lineage.runtime": record["runtime"]["mlopsc"],
            **{f"mlopsc.lineage.dataset.{k}": v or "" for k, v in record["datasets"].items()},
            "mlopsc.lineage.models": ", ".join(f"{d['registry']}/{d['version']}" for d in record["deployments"])}
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value)[:TAG_LIMIT])
    verdicts = ", ".join(f"{g}: {d.get('verdict', 'passed' if d.get('passed') else 'failed')}"
                         for g, d in record["gates"].items())
    for deployment in record["deployments"]:
        version_tags = {**common, "mlopsc.lineage.run": run_id, "mlopsc.gate": verdicts,
                        "mlopsc.runtime_version": record["runtime"]["mlopsc"],
                        **{f"mlopsc.dataset.{k}": v or "" for k, v in record["datasets"].items()},
                        **{f"mlopsc.metric.{k}": repr(float(v)) for k, v in deployment["metrics"].items()
                           if isinstance(v, (int, float))}}
        for key, value in version_tags.items():
            client.set_model_version_tag(deployment["registry"], str(deployment["version"]), key,
                                         str(value)[:TAG_LIMIT])
