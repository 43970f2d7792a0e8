"""MLflow model-registry helpers shared by the gate, deploy, monitor, lineage and the CLI.

An alias (`champion`) names the version in service. Promoting a version keeps the old holder under
`previous` (`<alias>-previous` for any other alias) and records on the new version which version
it replaced (tag `mlopsc.replaced.<alias>`), so rollbacks can walk back more than one step:
deploy v1, v2, v3 -> champion v3, previous v2; rollback -> champion v2, previous v1.

The registry is only ever written by `promote` and `rollback`; a gate reads it and never writes.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mlflow is imported inside the functions that need it
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

REPLACED_TAG = "mlopsc.replaced.{alias}"
METRIC_TAG = "mlopsc.metric."          # + metric name: evaluate metrics recorded on a version


class RegistryError(Exception):
    """A registry lookup found nothing; the message says what exists instead."""


@dataclass(frozen=True)
class Rollback:
    registry: str
    alias: str
    from_version: str
    to_version: str
    previous_version: str | None      # who holds the `previous` alias afterwards


def client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def previous_alias(alias: str) -> str:
    return "previous" if alias == "champion" else f"{alias}-previous"


def registered_names(mlflow_client: MlflowClient) -> list[str]:
    names: list[str] = []
    page_token = None
    while True:
        page = mlflow_client.search_registered_models(max_results=1000, page_token=page_token)
        names += [m.name for m in page]
        page_token = page.token
        if not page_token:
            return names


def require_model(mlflow_client: MlflowClient, name: str) -> None:
    """Raise RegistryError with a did-you-mean when no registered model is called `name`."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
        return
    except MlflowException:
        pass
    names = registered_names(mlflow_client)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    message = f"no registered model named '{name}'"
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    elif names:
        message += f"; registered models: {', '.join(sorted(names)[:10])}"
    else:
        message += "; the registry is empty (no pipeline has deployed a model yet)"
    raise RegistryError(message)


def version_by_alias(mlflow_client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve(mlflow_client: MlflowClient, reference: str) -> ModelVersion:
    """`NAME`, `NAME@alias` or `NAME/version` -> the model version (NAME alone means @champion)."""
    from mlflow.exceptions import MlflowException

    match = re.fullmatch(r"(?P<name>[^@/]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))?", reference)
    if match is None:
        raise RegistryError(f"'{reference}' is not NAME, NAME@alias or NAME/version")
    name = match["name"]
    require_model(mlflow_client, name)
    if match["version"]:
        try:
            return mlflow_client.get_model_version(name, match["version"])
        except MlflowException:
            raise RegistryError(f"'{name}' has no version {match['version']}; "
                                f"versions: {', '.join(_versions(mlflow_client, name))}") from None
    alias = match["alias"] or "champion"
    version = version_by_alias(mlflow_client, name, alias)
    if version is None:
        aliases = sorted(mlflow_client.get_registered_model(name).aliases)
        raise RegistryError(f"'{name}' has no alias '{alias}'; aliases: {', '.join(aliases) or 'none'}")
    return version


def _versions(mlflow_client: MlflowClient, name: str) -> list[str]:
    found = mlflow_client.search_model_versions(f"name = '{name}'")
    return sorted((str(v.version) for v in found), key=int)


def register(mlflow_client: MlflowClient, name: str, source: str, run_id: str | None,
             tags: dict[str, str]) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return mlflow_client.create_model_version(name, source=source, run_id=run_id, tags=tags)


def promote(mlflow_client: MlflowClient, name: str, version: str, alias: str) -> str | None:
    """Give `alias` to `version`; the old holder (if another version) gets the previous alias.
    Returns the old holder's version."""
    holder = version_by_alias(mlflow_client, name, alias)
    old = None if holder is None else str(holder.version)
    if old is not None and old != str(version):
        mlflow_client.set_registered_model_alias(name, previous_alias(alias), old)
        mlflow_client.set_model_version_tag(name, str(version), REPLACED_TAG.format(alias=alias), old)
    mlflow_client.set_registered_model_alias(name, alias, str(version))
    return None if old == str(version) else old


def rollback(mlflow_client: MlflowClient, name: str, alias: str = "champion") -> Rollback:
    """Move `alias` back to the holder of the previous alias; the previous alias moves one step
    further back (to the version that one replaced), or is removed when there is none."""
    require_model(mlflow_client, name)
    current = version_by_alias(mlflow_client, name, alias)
    prev_alias = previous_alias(alias)
    previous = version_by_alias(mlflow_client, name, prev_alias)
    if current is None:
        raise RegistryError(f"'{name}' has no alias '{alias}': nothing is deployed to roll back")
    if previous is None:
        raise RegistryError(f"'{name}@{alias}' is version {current.version}, and no version holds "
                            f"'{prev_alias}': there is nothing to roll back to")
    from_version, to_version = str(current.version), str(previous.version)
    mlflow_client.set_registered_model_alias(name, alias, to_version)
    mlflow_client.set_model_version_tag(name, from_version, f"mlopsc.rolled_back.{alias}", "true")
    before = previous.tags.get(REPLACED_TAG.format(alias=alias))
    if before and before not in (from_version, to_version):
        mlflow_client.set_registered_model_alias(name, prev_alias, before)
    else:
        mlflow_client.delete_registered_model_alias(name, prev_alias)
        before = None
    return Rollback(name, alias, from_version, to_version, before)


def version_metrics(mlflow_client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """A version's evaluation metrics: the `mlopsc.metric.*` tags that lineage records on it (the
    evaluate step's numbers, which the gate compared), over the metrics of its source run."""
    from mlflow.exceptions import MlflowException

    metrics: dict[str, float] = {}
    run_ids = [version.tags.get("mlopsc.train_run_id"), version.run_id]
    for run_id in dict.fromkeys(r for r in run_ids if r):
        try:
            metrics.update(mlflow_client.get_run(run_id).data.metrics)
        except MlflowException:
            continue   # the run was deleted; the tags below may still hold the numbers
    for key, value in version.tags.items():
        if key.startswith(METRIC_TAG):
            try:
                metrics[key[len(METRIC_TAG):]] = float(value)
            except ValueError:
                continue   # a tag someone set by hand; the run's metric (if any) stands
    return metrics


def describe(version: ModelVersion) -> dict[str, Any]:
    return {"registry": version.name, "version": str(version.version), "run_id": version.run_id,
            "aliases": list(version.aliases), "source": version.source}
