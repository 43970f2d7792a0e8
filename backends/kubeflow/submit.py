"""`mlopsc submit BUILD_DIR --target kubeflow --host URL [--experiment NAME] [--namespace NS]`.

Uploads the training pipeline (a new version when the pipeline exists; the version is named by
the package's sha256, so submitting the same build twice reuses it), starts a run, uploads each
monitor pipeline, creates the recurring runs of `recurring_run.yaml` (replacing those of the same
name) and prints the run's URL. `--wait` follows the run to its end.

Every failure is one message and an exit code (2 usage, 5 the server could not be reached or
refused, or a waited-for run did not succeed): no traceback. kfp is imported inside `submit` only.
"""
from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from ..cli import EXIT

USAGE, FAILED = EXIT["usage"], EXIT["step"]
TYPES = {"NUMBER_DOUBLE": float, "NUMBER_INTEGER": int, "STRING": str, "BOOLEAN": "bool"}


class SubmitError(Exception):
    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def submit(build_dir: str, *, host: str | None = None, experiment: str | None = None,
           namespace: str | None = None, start_run: bool = True, wait: bool = False,
           params: tuple[str, ...] = (), **_other_targets_options: Any) -> int:
    """Submit a built folder; return the exit code. (`--run` is implied: KFP runs what it uploads.)"""
    try:
        return _submit(Path(build_dir), host or os.environ.get("MLOPSC_KFP_HOST"), experiment, namespace,
                       wait, params)
    except SubmitError as exc:
        print(f"mlopsc: {exc}", file=sys.stderr)
        return exc.code


def _submit(folder: Path, host: str | None, experiment: str | None, namespace: str | None, wait: bool,
            params: tuple[str, ...]) -> int:
    import yaml

    package = folder / "pipeline.yaml"
    if not package.is_file():
        raise SubmitError(f"{folder} holds no pipeline.yaml: build it first with "
                          "`mlopsc build SPEC --target kubeflow -o DIR`", USAGE)
    if not host:
        raise SubmitError("no Kubeflow Pipelines host: pass --host URL (or set MLOPSC_KFP_HOST)", USAGE)
    spec = next(yaml.safe_load_all(package.read_text(encoding="utf-8")))
    arguments = parse_params(params, spec)
    with _talking_to(host):
        client = _client(host, namespace)
        name = spec["pipelineInfo"]["name"]
        pipeline_id, version_id = upload(client, package, name, spec["pipelineInfo"].get("description"))
        experiment_id = client.create_experiment(experiment or "Default", namespace=namespace).experiment_id
        run = client.run_pipeline(experiment_id=experiment_id, job_name=f"{name} {version_id[:8]}",
                                  pipeline_id=pipeline_id, version_id=version_id, params=arguments)
        print(f"run: {host.rstrip('/')}/#/runs/details/{run.run_id}")
        versions = {"pipeline.yaml": (pipeline_id, version_id)}
        for monitor in sorted(folder.glob("monitor_*.yaml")):
            monitor_spec = next(yaml.safe_load_all(monitor.read_text(encoding="utf-8")))
            monitor_name = monitor_spec["pipelineInfo"]["name"]
            versions[monitor.name] = upload(client, monitor, monitor_name, monitor_spec["pipelineInfo"].get("description"))
            print(f"uploaded monitor pipeline {monitor_name}")
        schedule(client, folder, experiment_id, versions)
        if wait:
            done = client.wait_for_run_completion(run.run_id, timeout=24 * 3600)
            state = str(getattr(done, "state", "")).upper()
            print(f"run {run.run_id}: {state}")
            return 0 if state == "SUCCEEDED" else FAILED
    return 0


def parse_params(params: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    """`NAME=VALUE` pairs typed by the pipeline's own parameter declarations."""
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    arguments: dict[str, Any] = {}
    for pair in params:
        name, sep, text = pair.partition("=")
        if not sep or name not in declared:
            known = ", ".join(sorted(declared))
            raise SubmitError(f"--param {pair}: expected NAME=VALUE with NAME one of: {known}", USAGE)
        kind = TYPES.get(declared[name].get("parameterType"), str)
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                arguments[name] = text.lower() == "true"
            else:
                arguments[name] = kind(text)
        except ValueError:
            raise SubmitError(f"--param {pair}: {name} is {declared[name]['parameterType'].lower()}", USAGE) from None
    return arguments


def upload(client: Any, package: Path, name: str, description: str | None) -> tuple[str, str]:
    """(pipeline id, version id): the pipeline is created on first submit; afterwards each distinct
    package becomes a version named by its sha256 (an identical package reuses its version)."""
    version_name = f"{name}-{hashlib.sha256(package.read_bytes()).hexdigest()[:12]}"
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(str(package), pipeline_name=name, description=description)
        print(f"uploaded pipeline {name}")
        first = _versions(client, pipeline.pipeline_id)   # KFP made the package its first version
        if first:
            return pipeline.pipeline_id, first[0].pipeline_version_id
        pipeline_id = pipeline.pipeline_id
    for version in _versions(client, pipeline_id):
        if version.display_name == version_name:
            return pipeline_id, version.pipeline_version_id
    version = client.upload_pipeline_version(str(package), pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id, description=description)
    print(f"uploaded version {version_name} of pipeline {name}")
    return pipeline_id, version.pipeline_version_id


def _versions(client: Any, pipeline_id: str) -> list[Any]:
    found, token = [], ""
    while True:
        page = client.list_pipeline_versions(pipeline_id, page_token=token, page_size=100)
        found += page.pipeline_versions or []
        token = page.next_page_token
        if not token:
            return found


def schedule(client: Any, folder: Path, experiment_id: str, versions: dict[str, tuple[str, str]]) -> None:
    """Create the recurring runs of recurring_run.yaml, replacing any of the same name (a resubmit
    moves the schedule onto the new version instead of adding a second one)."""
    import yaml

    path = folder / "recurring_run.yaml"
    if not path.is_file():
        return
    definition = next(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    existing = client.list_recurring_runs(experiment_id=experiment_id, page_size=100).recurring_runs or []
    for run in definition["runs"]:
        pipeline_id, version_id = versions[run["package"]]
        for old in existing:
            if old.display_name == run["name"]:
                client.delete_recurring_run(old.recurring_run_id)
        client.create_recurring_run(
            experiment_id=experiment_id, job_name=run["name"], cron_expression=run["cron"],
            max_concurrency=run["max_concurrency"], no_catchup=run["no_catchup"], enabled=run["enabled"],
            pipeline_id=pipeline_id, version_id=version_id)
        print(f"scheduled {run['name']}: {run['schedule']} (UTC)")


def _client(host: str, namespace: str | None) -> Any:
    try:
        import kfp
    except ImportError:
        raise SubmitError("`mlopsc submit --target kubeflow` needs kfp: pip install 'mlopsc[kubeflow]'",
                          USAGE) from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # "This client only works with ... v2.0.0-beta.2 and later"
        return kfp.Client(host=host, namespace=namespace)


class _talking_to:
    """Turn what the KFP client raises when the server is unreachable or refuses into one message."""

    def __init__(self, host: str) -> None:
        self.host = host

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, (SubmitError, KeyboardInterrupt)):
            return False
        import socket

        import urllib3

        if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, socket.gaierror)):
            reason = _root_cause(exc)
            raise SubmitError(f"cannot reach Kubeflow Pipelines at {self.host}: {reason}") from None
        status = getattr(exc, "status", None)
        if status is not None:   # kfp_server_api.ApiException
            raise SubmitError(f"Kubeflow Pipelines at {self.host} refused the request: "
                              f"HTTP {status} {getattr(exc, 'reason', '')}".rstrip()) from None
        return False


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None) is not None:
        reason = reason.reason
    text = str(reason or exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:200]
