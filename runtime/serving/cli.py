"""`mlopsc serve`: serve a registered model over HTTP (see docs/serving.md).

    mlopsc serve SPEC [--deploy NAME]       the version holding the deploy step's alias
    mlopsc serve --model NAME[@alias]       the same without a spec (NAME/3 pins version 3)

The MLflow store is found as `mlopsc run` finds it: --tracking-uri, else $MLFLOW_TRACKING_URI,
else `<spec folder>/.mlopsc/mlflow.db` (the current folder without a spec). The spec is read with
the compiler only here, lazily: the server itself needs the runtime and the IR alone.
"""
from __future__ import annotations

import difflib
import os
import sys
from typing import Any

import click

DEFAULT_PORT = 8080


def _fail(message: str) -> None:
    click.echo(f"mlopsc serve: {message}", err=True)
    sys.exit(1)


def deploy_of(spec: str, deploy: str | None) -> Any:
    """The spec's deploy step named `deploy`, or its only one."""
    from mlopsc.compiler import ir, load

    program = load(spec)
    deploys = [s for s in program.pipeline.steps if isinstance(s, ir.Deploy)]
    if not deploys:
        _fail(f"{spec} has no deploy step: nothing is registered to serve")
    if deploy is None:
        if len(deploys) > 1:
            _fail(f"{spec} has {len(deploys)} deploy steps; choose one with --deploy "
                  f"({', '.join(d.name for d in deploys)})")
        return deploys[0]
    for step in deploys:
        if step.name == deploy:
            return step
    close = difflib.get_close_matches(deploy, [d.name for d in deploys], n=1)
    _fail(f"--deploy {deploy}: no such deploy step" + (f"; did you mean {close[0]!r}?" if close else
                                                        f"; deploy steps: {', '.join(d.name for d in deploys)}"))


def store_uri(tracking_uri: str | None, base_dir: str) -> str:
    from mlopsc.runtime.state_folder import state_folder

    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = os.path.join(state_folder(base_dir), "mlflow.db")
    if not os.path.exists(store):
        # Opening a missing SQLite store would create an empty one and then report "no such model".
        _fail(f"no MLflow store at {store}: run `mlopsc run` on the spec first, or pass --tracking-uri")
    return f"sqlite:///{store}"


@click.command()
@click.argument("spec", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--deploy", default=None, metavar="NAME", help="The spec's deploy step to serve (when it has several).")
@click.option("--model", "model_ref", default=None, metavar="NAME[@ALIAS]",
              help="Serve a registered model without a spec (NAME means NAME@champion; NAME/3 pins version 3).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help=f"Port (default: the deploy's serving {{ port }}, else {DEFAULT_PORT}).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes (each batches, logs and counts on its own).")
@click.option("--tracking-uri", default=None, help="MLflow tracking URI (default: as `mlopsc run` finds it).")
@click.option("--log", "log_uri", default=None, metavar="URI",
              help="Prediction log folder, any fsspec URI (default: <state folder>/serving/<registry>/).")
@click.option("--no-log", is_flag=True, help="Do not log predictions (feedback is then refused).")
@click.option("--poll-interval", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Seconds between checks of the registry alias (0: do not follow it).")
@click.option("--token-env", default=None, metavar="NAME",
              help="Require `Authorization: Bearer $NAME` on predictions and feedback.")
@click.option("--max-request-bytes", type=click.IntRange(1), default=10 * 1024 * 1024, show_default=True,
              help="Largest request body accepted (larger: 413).")
@click.option("--max-batch-size", type=click.IntRange(1, 10_000), default=None,
              help="Rows per predict call (default: the deploy's serving block, else 32).")
@click.option("--max-batch-wait-ms", type=click.IntRange(0, 1000), default=None,
              help="How long a batch waits for more requests (default: the deploy's serving block, else 5).")
@click.option("--flush-interval", type=click.FloatRange(0.05, 1.0), default=0.5, show_default=True,
              help="Seconds between writes of the prediction log (what a kill -9 can lose).")
def serve(spec: str | None, deploy: str | None, model_ref: str | None, host: str, port: int | None, workers: int,
          tracking_uri: str | None, log_uri: str | None, no_log: bool, poll_interval: float, token_env: str | None,
          max_request_bytes: int, max_batch_size: int | None, max_batch_wait_ms: int | None,
          flush_interval: float) -> None:
    """Serve SPEC's deployed model (or --model NAME[@alias]) over HTTP: MLflow's scoring protocol,
    the Open Inference Protocol (V2), Prometheus metrics; following the registry alias and logging
    every prediction."""
    from mlopsc.compiler import ir

    if (spec is None) == (model_ref is None):
        raise click.UsageError("give a SPEC or --model NAME[@alias], not both" if spec else
                               "give a SPEC (its deploy step is served) or --model NAME[@alias]")
    if deploy and not spec:
        raise click.UsageError("--deploy needs a SPEC")
    if token_env and not os.environ.get(token_env):
        raise click.UsageError(f"--token-env {token_env}: the variable is not set or empty")
    serving = ir.Serving()
    if spec:
        step = deploy_of(spec, deploy)
        base_dir = os.path.dirname(os.path.abspath(spec))
        model_ref = f"{step.registry}@{step.alias}"
        serving = step.serving or serving
        if port is None and step.serving is not None:
            port = step.serving.port
    else:
        base_dir = os.getcwd()

    from .app import configure_logging

    configure_logging()
    uri = store_uri(tracking_uri, base_dir)
    name, alias, version = resolve(uri, model_ref)
    from mlopsc.runtime.state_folder import serving_log_folder

    if not no_log and log_uri is None:     # where a served source (`served = DEPLOY`) reads it
        log_uri = str(serving_log_folder(base_dir, name))
    from .app import ServeConfig

    config = ServeConfig(
        model_name=name, tracking_uri=uri, alias=alias, version=None if alias else version,
        log_uri=None if no_log else log_uri,
        max_batch_size=max_batch_size or serving.max_batch_size,
        max_batch_wait_ms=serving.max_batch_wait_ms if max_batch_wait_ms is None else max_batch_wait_ms,
        poll_interval=poll_interval, token_env=token_env, max_request_bytes=max_request_bytes,
        flush_interval=flush_interval)
    run(config, host, port or DEFAULT_PORT, workers, version)


def resolve(uri: str, reference: str) -> tuple[str, str | None, str]:
    """(name, alias or None when pinned, the version to serve first). The alias's holder is read
    without MLflow where the store allows (runtime/registry_lookup.py), which spares the start
    MLflow's import; MLflow answers otherwise, and says what is wrong when nothing holds it."""
    from mlopsc.runtime import registry_lookup

    name, _, alias = reference.partition("@")
    if "/" not in reference:
        try:
            held = registry_lookup.holder(uri, name, alias or "champion")
        except registry_lookup.Unavailable:
            held = None
        if held is not None:
            return name, alias or "champion", held["version"]
    from mlflow.exceptions import MlflowException
    from mlopsc.runtime import registry

    try:
        found = registry.resolve(registry.client(uri), reference)
    except registry.RegistryError as exc:
        _fail(str(exc))
    except MlflowException as exc:
        _fail(f"the MLflow store failed: {exc.message.splitlines()[0] if exc.message else exc}")
    pinned = "/" in reference
    alias = None if pinned else (reference.partition("@")[2] or "champion")
    return found.name, alias, str(found.version)


def run(config: Any, host: str, port: int, workers: int, version: str) -> None:
    import uvicorn

    from .app import CONFIG_ENV, app_from_environment, create_app
    from .model import ModelLoadError, load_version

    # Keep-alive longer than clients' own idle expiry (httpx, requests: 5 s), so that the client, not
    # the server, closes an idle connection: a server closing one as a request arrives on it fails
    # that request.
    options = {"host": host, "port": port, "access_log": False, "log_level": "info",
               "timeout_graceful_shutdown": 30, "timeout_keep_alive": 75}
    if workers > 1:
        # Each worker process loads the model and builds its app from the environment.
        os.environ[CONFIG_ENV] = config.to_json()
        uvicorn.run(f"{app_from_environment.__module__}:app_from_environment", factory=True, workers=workers,
                    **options)
        return
    try:
        model = load_version(config.tracking_uri, config.model_name, version)
    except ModelLoadError as exc:
        _fail(f"version {version} of {config.model_name!r} cannot be served: {exc}")
    click.echo(f"mlopsc serve: {config.model_name} version {version} on http://{host}:{port} "
               f"(log: {config.log_uri or 'off'})", err=True)
    uvicorn.run(create_app(config, model), **options)
