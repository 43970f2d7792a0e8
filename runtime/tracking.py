"""MLflow setup: one experiment per pipeline, one parent run per pipeline run, one nested run per step.

Tracking URI, first found: `ctx.tracking_uri`, env `MLFLOW_TRACKING_URI`,
`sqlite:///<spec dir>/.mlopsc/mlflow.db` (in the state folder of `state_folder.py`, created). The
registry URI is the same. For a SQLite store, artifacts go to `mlartifacts/` beside the database
rather than MLflow's default `./mlruns` under whatever folder the process happens to run in.

Steps may run in different processes: the parent run is passed by id (`ctx.parent_run_id`), and a
step's run is opened with `parent_run_id=` (MLflow's `mlflow.parentRunId` tag), never by relying
on a fluent "active run" inherited from the caller. mlflow is imported only in this module's
functions and in the stages that log.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from .state_folder import state_folder

if TYPE_CHECKING:
    from .core import RunContext

STATUS = {"ok": "FINISHED", "warn": "FINISHED", "failed": "FAILED", "interrupted": "KILLED",
          "FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}


def tracking_uri(ctx: RunContext) -> str:
    if ctx.tracking_uri:
        return ctx.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    spec_dir = os.path.dirname(os.path.abspath(ctx.spec_path)) if ctx.spec_path else os.getcwd()
    folder = state_folder(spec_dir)
    os.makedirs(folder, exist_ok=True)
    return f"sqlite:///{os.path.join(folder, 'mlflow.db')}"


def metric_name(text: str) -> str:
    """`text` as an MLflow metric name: letters, digits, `_ - . /` and spaces are kept, the rest
    become `_`."""
    import re

    return re.sub(r"[^\w\-. /]", "_", text)


def _quiet() -> None:
    # MLflow and alembic log schema migrations and hints at INFO on every new store; a pipeline
    # run's output is the steps' results, not that.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence MLflow's own warnings (deprecations of its store, schema hints, dataset-source
    guesses) inside the block; other libraries' warnings still show."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
        yield


def _artifact_location(uri: str, experiment: str) -> str | None:
    if not uri.startswith("sqlite:///"):
        return None   # a server or another store chooses its own artifact location
    db_dir = os.path.dirname(os.path.abspath(uri[len("sqlite:///"):]))
    return "file://" + os.path.join(db_dir, "mlartifacts", experiment)


def configure(ctx: RunContext) -> str:
    """Point MLflow at the run's store and return the pipeline experiment's id (created once)."""
    _quiet()
    uri = tracking_uri(ctx)
    with quiet_warnings():
        import mlflow

        return _experiment_id(mlflow, uri, ctx.pipeline)


def _experiment_id(mlflow: Any, uri: str, name: str) -> str:
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _quiet()
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_artifact_location(uri, name))
    except MlflowException:
        # Another step process created it in between: use theirs.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def client(ctx: RunContext) -> Any:
    """An MlflowClient on the run's tracking and registry URI."""
    import mlflow

    configure(ctx)
    uri = tracking_uri(ctx)
    return mlflow.MlflowClient(uri, registry_uri=uri)


def _run_tags(ctx: RunContext) -> dict[str, str]:
    return {"mlopsc.pipeline": ctx.pipeline, "mlopsc.run_id": ctx.run_id, "mlopsc.spec_hash": ctx.spec_hash}


def start_pipeline_run(ctx: RunContext) -> str:
    """Open the pipeline run's parent MLflow run (params logged) and return its id. The caller
    stores it in `ctx.parent_run_id` and passes the context to every step."""
    experiment_id = configure(ctx)
    c = client(ctx)
    run = c.create_run(experiment_id, run_name=f"{ctx.pipeline}-{ctx.run_id}", tags=_run_tags(ctx))
    from mlflow.entities import Param

    c.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in sorted(ctx.params.items())])
    return run.info.run_id


def end_pipeline_run(ctx: RunContext, status: str = "ok") -> None:
    """Close the parent run: status "ok" | "warn" | "failed" | "interrupted" (or MLflow's own)."""
    if ctx.parent_run_id:
        client(ctx).set_terminated(ctx.parent_run_id, STATUS.get(status, "FAILED"))


@contextlib.contextmanager
def step_run(ctx: RunContext, step: ir.Step) -> Iterator[Any]:
    """The step's MLflow run, active for the fluent `mlflow.log_*` calls inside the block: nested
    under `ctx.parent_run_id` when there is one, a plain run otherwise. Ends FAILED on an error."""
    experiment_id = configure(ctx)
    import mlflow

    tags = {**_run_tags(ctx), "mlopsc.step": step.name, "mlopsc.kind": step.kind}
    if step.span is not None:
        tags["mlopsc.span"] = str(step.span)
    with mlflow.start_run(experiment_id=experiment_id, run_name=step.name, parent_run_id=ctx.parent_run_id,
                          nested=ctx.parent_run_id is not None or mlflow.active_run() is not None,
                          tags=tags) as run, quiet_warnings():
        yield run


def log_dataset(df: Any, uri: str, *, name: str, digest: str, context: str,
                targets: str | None = None) -> None:
    """`mlflow.log_input` of a Dataset artifact in the active run. MLflow keeps at most 36
    characters of a digest, so the first 16 hex digits go there and the full sha256 into the
    input's tags (`mlopsc.sha256`) for lineage. The digest is the caller's and the schema is
    `dataset_schema`'s: MLflow computes neither over the whole frame."""
    import mlflow
    import mlflow.data
    from mlflow.exceptions import MlflowException

    with quiet_warnings():
        local = "://" not in uri or uri.startswith("file://")
        dataset = mlflow.data.from_pandas(df, source=uri if local else None, name=name, digest=digest[:16],
                                          targets=targets)
        # PandasDataset.schema is a functools.cached_property: a value in the instance's
        # __dict__ is what it returns, so MLflow's own inference never runs.
        dataset.__dict__["schema"] = dataset_schema(df)
        tags = {"mlopsc.sha256": digest, "mlopsc.uri": uri}
        try:
            mlflow.log_input(dataset, context=context, tags=tags)
        except MlflowException as exc:
            # Two steps running at once (`--jobs 2`, Prefect's tasks) that log the same dataset can
            # both find it missing and both insert it: the second insert breaks the store's unique
            # key and is rolled back. The dataset is in the store now, so once more links it.
            if "IntegrityError" not in str(exc):
                raise
            mlflow.log_input(dataset, context=context, tags=tags)


SCHEMA_SAMPLE_ROWS = 1000


def dataset_schema(df: Any) -> Any:
    """MLflow's schema of `df`: column types inferred from the first `SCHEMA_SAMPLE_ROWS` rows
    (only text columns need values; the rest follow from the dtype), `required` from every row.
    MLflow's own inference tests each value of each column in Python: about 16 s per million rows
    of twenty columns. None when MLflow cannot describe a column, as MLflow itself does then."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    try:
        with quiet_warnings():    # MLflow's hint about integer columns, on every frame that has one
            sampled = infer_signature(df.head(SCHEMA_SAMPLE_ROWS)).inputs
    except (MlflowException, TypeError, ValueError):
        return None
    if sampled is None or len(sampled.inputs) != len(df.columns):
        return None
    return Schema([ColSpec(spec.type, spec.name, required=not bool(df[column].isna().any()))
                   for spec, column in zip(sampled.inputs, df.columns)])
