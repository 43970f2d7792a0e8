"""Deploy (register a model version, move the alias) and Score (batch predictions).

Deploy. Input `model`: the train step's MLflow model folder. The folder is copied into the MLflow
artifact store (artifact `registered_model` of the train step's MLflow run, recorded by the train
stage in the folder's MLmodel metadata; of the deploy step's run when that run is unknown or
deleted) and that copy is registered, so that `models:/NAME@ALIAS` loads and serves from MLflow
alone, whatever store (local, memory://, s3://) held the pipeline's artifacts. The version's
`run_id` is the run holding the copy (MLflow, and a tracking server, require that), so normally
the train run, to which the evaluate stage also logs its metrics. The version is tagged with the
model's sha256, the pipeline run and the train run.
Re-deploying a model whose sha256 is already a version reuses that version instead of adding a
duplicate. The alias moves to the version; its old holder keeps alias `previous`. When that
version holds the alias already, nothing changes, and the result says so (`unchanged`, a note).
Output `release`: a Report JSON {registry, version, alias, previous_version, model_sha256, ...}.

Score. Inputs `data` and either `model` (a model folder) or `step.registry` (`models:/NAME@ALIAS`).
Output `predictions`: the data's columns plus `y_pred` and, for a classifier, one `proba_<class>`
column per class; also written to `step.output` (.parquet or .csv, relative to the spec folder).
"""
from __future__ import annotations

import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts
from .core import RunContext, StepError, require_columns, step_result

if TYPE_CHECKING:
    import pandas as pd


def run(step: ir.Deploy | ir.Score, inputs: dict[str, str], outputs: dict[str, str],
        ctx: RunContext) -> dict[str, Any]:
    if isinstance(step, ir.Score):
        return score(step, inputs, outputs, ctx)
    return deploy(step, inputs, outputs, ctx)


# ---------------------------------------------------------------- deploy


def deploy(step: ir.Deploy, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    from . import registry, tracking

    model_uri = inputs["model"]
    if not artifacts.exists(model_uri):
        raise StepError("the model to deploy does not exist", expected="the train step's model folder",
                        found=model_uri)
    sha256 = artifacts.sha256_of(model_uri)
    train_run_id = model_run_id(model_uri)
    client = tracking.client(ctx)
    version = _existing_version(client, step.registry, sha256)
    holder = registry.version_by_alias(client, step.registry, step.alias)
    with tracking.step_run(ctx, step) as mlflow_run:
        import mlflow

        if version is None:
            source_run = train_run_id if train_run_id and _run_exists(client, train_run_id) else None
            source = _log_model_folder(client, model_uri, source_run or mlflow_run.info.run_id)
            tags = {"mlopsc.model_sha256": sha256, "mlopsc.pipeline": ctx.pipeline,
                    "mlopsc.run_id": ctx.run_id, "mlopsc.spec_hash": ctx.spec_hash,
                    "mlopsc.deploy_run_id": mlflow_run.info.run_id}
            if train_run_id:
                tags["mlopsc.train_run_id"] = train_run_id
            if ctx.parent_run_id:
                tags["mlopsc.parent_run_id"] = ctx.parent_run_id
            version = registry.register(client, step.registry, source,
                                        source_run or mlflow_run.info.run_id, tags)
        previous = registry.promote(client, step.registry, version.version, step.alias)
        mlflow.set_tags({"mlopsc.registry": step.registry, "mlopsc.version": str(version.version),
                         "mlopsc.alias": step.alias})
    release = {
        "registry": step.registry, "version": str(version.version), "alias": step.alias,
        "previous_alias": registry.previous_alias(step.alias), "previous_version": previous,
        "model_sha256": sha256, "model_uri": f"models:/{step.registry}@{step.alias}",
        "source": version.source, "train_run_id": train_run_id,
        "serving": step.serving.model_dump(exclude={"spans"}) if step.serving else None,
    }
    digest = artifacts.write_json(release, outputs["release"])
    # The same model again (a retrain on unchanged data, where no cache spared the run): say so.
    unchanged = holder is not None and str(holder.version) == str(version.version)
    note = f"nothing new to deploy: this model is version {version.version}, which already holds '{step.alias}'"
    return step_result(step, {"release": (outputs["release"], digest)}, unchanged=unchanged,
                       **({"notes": [note]} if unchanged else {}),
                       **{k: release[k] for k in ("registry", "version", "alias", "previous_version",
                                                  "model_sha256", "model_uri")})


def model_run_id(model_uri: str) -> str | None:
    """The MLflow run that trained the model, as the train stage records it in the folder's
    MLmodel metadata (`mlopsc.mlflow_run_id`); else MLflow's own `run_id` field, if any."""
    import yaml

    fs, path = artifacts._fs(model_uri)
    mlmodel = f"{path.rstrip('/')}/MLmodel"
    if not fs.exists(mlmodel):
        raise StepError("the model folder is not an MLflow model", expected="an MLmodel file in it",
                        found=model_uri)
    meta = yaml.safe_load(fs.cat_file(mlmodel)) or {}
    return ((meta.get("metadata") or {}).get("mlopsc") or {}).get("mlflow_run_id") or meta.get("run_id")


def _existing_version(client: Any, name: str, sha256: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    same = [v for v in versions if v.tags.get("mlopsc.model_sha256") == sha256]
    return max(same, key=lambda v: int(v.version)) if same else None


def _run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False   # deleted since: the deploy's own run holds the copy
    return True


def _log_model_folder(client: Any, model_uri: str, run_id: str) -> str:
    """Copy the model folder into the artifacts of run `run_id` (the train run, so that the version's
    source run is where it was trained); return the copy's URI. MLflow requires a version's
    source to lie in its run's artifacts, and a tracking server checks it."""
    fs, path = artifacts._fs(model_uri)
    with tempfile.TemporaryDirectory(prefix="mlopsc-deploy-") as tmp:
        local = path
        if not artifacts._is_local(fs):
            local = os.path.join(tmp, "model")
            fs.get(path.rstrip("/") + "/", local, recursive=True)
        client.log_artifacts(run_id, local, "registered_model")
    return f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/registered_model"


# ---------------------------------------------------------------- score


def load_scoring_model(step: ir.Score | ir.Monitor, inputs: dict[str, str],
                       ctx: RunContext) -> tuple[Any, str | None]:
    """The model a Score or Monitor step uses and where it came from: `models:/registry@alias`
    when the step names a registry (a monitor's `registry` is its model's deploy, and it then
    scores the deployed model: no backend gives it a `model` input), else its `model` input;
    (None, None) when it has neither."""
    if not step.registry:
        if inputs.get("model"):
            return artifacts.load_model(inputs["model"]), inputs["model"]
        return None, None
    from . import registry, tracking

    client = tracking.client(ctx)   # also points the `models:/` loader at the run's registry
    uri = f"models:/{step.registry}@{step.alias}"
    try:
        registry.require_model(client, step.registry)
    except registry.RegistryError as exc:
        if isinstance(step, ir.Monitor):
            raise _nothing_deployed(step, ctx) from None
        raise StepError(str(exc), expected="a model deployed by a pipeline", found=step.registry) from None
    if registry.version_by_alias(client, step.registry, step.alias) is None:
        if isinstance(step, ir.Monitor):
            raise _nothing_deployed(step, ctx) from None
        raise StepError(f"no version of '{step.registry}' holds alias '{step.alias}'",
                        expected=f"a deployed {uri}", found="no such alias")
    return artifacts.load_model(uri), uri


def _nothing_deployed(step: ir.Monitor, ctx: RunContext) -> StepError:
    """A monitor of a deployed model before anything is deployed: say what to run first."""
    spec = (step.span.file if step.span else ctx.spec_path) or "SPEC"
    return StepError(f"monitor {step.name} scores the model deployed as {step.registry}@{step.alias}, and "
                     f"nothing is deployed there yet: run the pipeline that deploys it first (`mlopsc run {spec}`, or "
                     "`mlopsc submit` of its Prefect or Kubeflow build)",
                     expected=f"a version of '{step.registry}' holding alias '{step.alias}'",
                     found="none")


def predict(step: ir.Step, model: Any, data: pd.DataFrame) -> pd.DataFrame:
    """`data` plus `y_pred` and, for a classifier, `proba_<class>` columns."""
    features = [str(c) for c in getattr(model, "feature_names_in_", data.columns)]
    require_columns(step, [str(c) for c in data.columns], features, role="model feature")
    from .scoring import predict_with_proba

    predicted, proba = predict_with_proba(model, data[features])   # one pass for both
    columns = {"y_pred": predicted}
    if proba is not None:
        columns |= {f"proba_{cls}": column for cls, column in zip(model.classes_, proba.T)}
    return data.assign(**columns)   # the data's columns are shared, not copied


def score(step: ir.Score, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    from . import tracking

    model, source = load_scoring_model(step, inputs, ctx)
    if model is None:
        raise StepError("a score step needs a model", expected="model = <train step> or registry = NAME",
                        found="neither")
    data = artifacts.read_parquet(inputs["data"])
    scored = predict(step, model, data)
    digest = artifacts.write_parquet(scored, outputs["predictions"])
    result = step_result(step, {"predictions": (outputs["predictions"], digest)}, rows=len(scored), model=source)
    if step.output:
        result["output"] = write_copy(step, scored, ctx)
    with tracking.step_run(ctx, step):
        import mlflow

        mlflow.log_metric("rows_scored", len(scored))
        mlflow.set_tags({"mlopsc.scored_with": result["model"], "mlopsc.predictions_sha256": digest})
    return result


def write_copy(step: ir.Score, scored: pd.DataFrame, ctx: RunContext) -> str:
    """Write `scored` to `step.output` (relative to the spec's folder) atomically."""
    target = step.output
    if "://" not in target and not os.path.isabs(target):
        base = os.path.dirname(os.path.abspath(ctx.spec_path)) if ctx.spec_path else os.getcwd()
        target = os.path.join(base, target)
    suffix = os.path.splitext(target)[1].lower()
    if suffix not in (".parquet", ".csv"):
        raise StepError("the score output must be a .parquet or .csv file", span=step.spans.get("output"),
                        expected="output = \"predictions.parquet\" or \"predictions.csv\"", found=step.output)
    if suffix == ".parquet":
        artifacts.write_parquet(scored, target)
        return target
    fs, path = artifacts._fs(target)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, "w") as handle:
            scored.to_csv(handle, index=False)
        fs.mv(tmp, path)   # readers never see half a file
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)
    return target
