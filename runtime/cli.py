"""`mlopsc rollback` and `mlopsc lineage`: registry commands that need no spec.

Both talk to the MLflow store a pipeline run from this folder would use (tracking.py's rule, with
the spec folder = the current folder), or to `--tracking-uri`. A registry name that does not
exist, an unknown alias or version, or an unreachable store print one message and exit 1.
mlflow is imported only once a command runs, so `mlopsc --help` stays fast.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from typing import Any

import click

from .state_folder import STATE_FOLDER, state_folder

TRACKING_HELP = (f"MLflow tracking URI (default: MLFLOW_TRACKING_URI, else {STATE_FOLDER}/mlflow.db in the "
                 "current folder, where `mlopsc run` keeps it).")


def _fail(message: str) -> None:
    click.echo(f"mlopsc: {message}", err=True)
    # SystemExit, not click's Exit: `mlopsc` runs click with standalone_mode=False, where click
    # turns Exit(1) into a return value that the entry point does not pass on.
    sys.exit(1)


def _client(tracking_uri: str | None) -> Any:
    from . import registry, tracking
    from .core import RunContext

    if not tracking_uri and not os.environ.get("MLFLOW_TRACKING_URI"):
        # Opening a missing SQLite store would create an empty one and then report "no such model".
        store = os.path.join(state_folder(os.getcwd()), "mlflow.db")
        if not os.path.exists(store):
            _fail(f"no MLflow store here ({store} does not exist): run the command in the folder of the "
                  "spec that deployed the model, or pass --tracking-uri")
    uri = tracking_uri or tracking.tracking_uri(RunContext(pipeline="", run_id="",
                                                           spec_path=os.path.join(os.getcwd(), "spec")))
    for name in ("mlflow", "alembic"):   # store migrations log at INFO; the answer is the output
        logging.getLogger(name).setLevel(logging.WARNING)
    return _guard(lambda: registry.client(uri))   # an unknown scheme fails here already


def _guard(action: Any) -> Any:
    """Run a registry action; a lookup miss or a store error becomes one message and exit 1."""
    from mlflow.exceptions import MlflowException

    from .registry import RegistryError

    try:
        return action()
    except RegistryError as exc:
        _fail(str(exc))
    except MlflowException as exc:
        _fail(f"the MLflow store failed: {exc.message.splitlines()[0] if exc.message else exc}")
    except OSError as exc:   # e.g. a sqlite:/// store in a folder that does not exist
        _fail(f"the MLflow store cannot be opened: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


@click.command()
@click.argument("registry_name")
@click.option("--alias", default="champion", show_default=True, help="The alias to move back.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def rollback(registry_name: str, alias: str, tracking_uri: str | None) -> None:
    """Give ALIAS of REGISTRY_NAME back to the version that held it before (alias `previous`)."""
    from . import registry

    client = _client(tracking_uri)
    done = _guard(lambda: registry.rollback(client, registry_name, alias))
    click.echo(f"{registry_name}@{alias}: version {done.from_version} -> version {done.to_version}")
    previous = registry.previous_alias(alias)
    if done.previous_version:
        click.echo(f"  '{previous}' now names version {done.previous_version}, which version "
                   f"{done.to_version} had replaced")
    else:
        click.echo(f"  no version holds '{previous}' any more: version {done.to_version} replaced none")


@click.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the lineage record as JSON.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def lineage(model: str, as_json: bool, tracking_uri: str | None) -> None:
    """Show which spec and data produced MODEL: NAME (its champion), NAME@alias or NAME/version."""
    from . import registry

    client = _client(tracking_uri)
    version = _guard(lambda: registry.resolve(client, model))
    tags = {k: v for k, v in version.tags.items() if k.startswith("mlopsc.")}
    record = _guard(lambda: _lineage_record(client, tags.get("mlopsc.lineage.run")))
    found = {**registry.describe(version), "tags": tags, "lineage": record}
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True, default=str))
        return
    click.echo("\n".join(render(found)))


def _lineage_record(client: Any, run_id: str | None) -> dict[str, Any] | None:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="mlopsc-lineage-") as tmp:
        try:
            path = client.download_artifacts(run_id, "lineage.json", tmp)
        except (MlflowException, OSError):
            return None   # the run or its artifacts were deleted; the version tags remain
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)


def render(found: dict[str, Any]) -> list[str]:
    """Human-readable lines for a model version and its lineage record."""
    aliases = f"  (aliases: {', '.join(sorted(found['aliases']))})" if found["aliases"] else ""
    lines = [f"{found['registry']} version {found['version']}{aliases}"]
    record, tags = found["lineage"], found["tags"]

    def row(label: str, *values: str) -> None:
        for i, value in enumerate(values or ("-",)):
            lines.append(f"  {label if i == 0 else '':12} {value}")

    if record is None:
        row("lineage", "no lineage record (the pipeline run that deployed it did not finish);",
            "what the version's tags say:")
        for key, value in sorted(tags.items()):
            row("", f"{key} = {value}")
        return lines
    git = record.get("git") or {}
    row("pipeline", f"{record['pipeline']}, run {record['run_id']} (MLflow run {record['mlflow_run_id']})")
    row("spec", str(record["spec"].get("path")), f"sha256 {record['spec'].get('sha256') or '-'}")
    row("git commit", (git["commit"] + (" (spec modified since)" if git.get("spec_modified") else ""))
        if git else "not in a git repository")
    width = max((len(k) for k in record["datasets"]), default=0)
    row("datasets", *[f"{k:{width}}  sha256 {v}" for k, v in record["datasets"].items()])
    row("models", *[f"{k}  sha256 {v['sha256']}" for k, v in record["models"].items()])
    deployment = next((d for d in record["deployments"] if d.get("registry") == found["registry"]
                       and str(d.get("version")) == found["version"]), {})
    metrics = deployment.get("metrics") or {}
    row("metrics", ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())) or "-")
    row("gate", *[f"{g}: {d.get('verdict', 'passed' if d.get('passed') else 'failed')}"
                  + (f" by {d['forced_by']} at {d['forced_at']}" if d.get("forced_by") else "")
                  for g, d in record["gates"].items()])
    row("params", ", ".join(f"{k}={v}" for k, v in sorted(record["params"].items())) or "-")
    runtime = record.get("runtime", {})
    row("runtime", f"mlopsc {runtime.get('mlopsc')}"
        + "".join(f", {k} {v}" for k, v in runtime.items() if k != "mlopsc"))
    row("recorded", record.get("recorded_at", "-"))
    return lines
