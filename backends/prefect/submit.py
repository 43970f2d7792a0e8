"""`mlopsc submit DIR --target prefect`: create or update a build's deployments on a Prefect server.

    mlopsc submit build/ --target prefect [--api-url URL] [--work-pool NAME] [--run] [--wait] [--param N=V]

- reads DIR/prefect.yaml (written by `mlopsc build --target prefect`): one deployment per flow;
- server: --api-url, else PREFECT_API_URL (env or Prefect profile); none at all is a usage error,
  since an ephemeral server would forget the deployments as soon as this command ends;
- work pool: --work-pool, else the one in prefect.yaml; a missing pool is created with the type the
  build assumed (prefect.yaml's `definitions.mlopsc.work_pool_type`) and Prefect's default job
  template for it; an existing pool is used as it is, with a warning when its type differs;
- each deployment: `flow.from_source(DIR, "flows.py:<flow>").deploy(...)` with its cron schedule;
- --run starts the pipeline's (first) deployment with the --param values; --wait follows it,
  printing each step as it finishes, until the flow run ends.

Exit codes (as for `mlopsc run`): 0 deployed (and the run completed) · 2 usage (no build, no
server configured, bad --param) · 3 a data check stopped the run · 4 the gate failed · 5 the
server cannot be reached, a missing pool cannot be created, the build cannot be loaded or the run
failed. No traceback is printed.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from ..cli import EXIT

FINAL_EXIT = {"Completed": EXIT["ok"], "CheckFailed": EXIT["check"], "GateFailed": EXIT["gate"]}


class SubmitError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def submit(build_dir: str, *, api_url: str | None = None, work_pool: str | None = None,
           start_run: bool = False, wait: bool = False, params: tuple[str, ...] = (), **ignored: Any) -> int:
    try:
        import httpx
        from prefect.exceptions import PrefectException
    except ImportError:
        raise click.UsageError("`mlopsc submit --target prefect` needs prefect: pip install 'mlopsc[prefect]'") from None

    try:
        return _submit(Path(build_dir), api_url, work_pool, start_run, wait, params, ignored)
    except SubmitError as exc:
        click.echo(f"mlopsc submit: {exc}", err=True)
        return exc.code
    except (httpx.HTTPError, PrefectException) as exc:
        # The server went away or refused a request half-way (after the health check passed).
        click.echo(f"mlopsc submit: the Prefect server failed a request: {type(exc).__name__}: {exc}", err=True)
        return EXIT["step"]


def _submit(build_dir: Path, api_url: str | None, work_pool: str | None, start_run: bool, wait: bool,
            params: tuple[str, ...], ignored: dict[str, Any]) -> int:
    for option, value in ignored.items():
        if value:
            click.echo(f"mlopsc submit: --{option} is for kubeflow; ignored for prefect", err=True)
    config = read_build(build_dir)
    parameters = parse_params(params)
    api_url = server_url(api_url)
    os.environ["PREFECT_API_URL"] = api_url   # before prefect reads its settings
    check_reachable(api_url)

    pool = work_pool or config["deployments"][0]["work_pool"]["name"]
    ensure_work_pool(pool, built_pool_type(config))
    names = [deploy(build_dir, spec, pool) for spec in config["deployments"]]
    if not start_run:
        click.echo(f"start a run with: prefect deployment run '{names[0]}'  (a worker must poll pool {pool!r})")
        return EXIT["ok"]
    flow_run = trigger(names[0], parameters)
    return follow(flow_run.id) if wait else EXIT["ok"]


# ---------------------------------------------------------------- inputs


def read_build(build_dir: Path) -> dict[str, Any]:
    import yaml

    path = build_dir / "prefect.yaml"
    if not path.is_file() or not (build_dir / "flows.py").is_file():
        raise SubmitError(f"{build_dir} is not a Prefect build (no prefect.yaml and flows.py); "
                          f"create one with: mlopsc build SPEC --target prefect -o {build_dir}", EXIT["usage"])
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    if not config.get("deployments"):
        raise SubmitError(f"{path} defines no deployments", EXIT["usage"])
    return config


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """`NAME=VALUE` pairs; VALUE is read as JSON when it is JSON (0.3, true, "x"), else as text."""
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise SubmitError(f"--param {item!r}: expected NAME=VALUE", EXIT["usage"])
        try:
            values[name.strip()] = json.loads(text)
        except ValueError:
            values[name.strip()] = text
    return values


def server_url(api_url: str | None) -> str:
    url = api_url or os.environ.get("PREFECT_API_URL")
    if not url:
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
    if not url:
        raise SubmitError("no Prefect server: pass --api-url http://HOST:4200/api or set PREFECT_API_URL "
                          "(start one with: prefect server start)", EXIT["usage"])
    return url.rstrip("/")


def check_reachable(api_url: str) -> None:
    import httpx

    try:
        response = httpx.get(f"{api_url}/health", timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise SubmitError(f"cannot reach the Prefect server at {api_url}: {reason}\n"
                          "  is it running (prefect server start), and is the URL right (it ends in /api)?",
                          EXIT["step"]) from None


# ---------------------------------------------------------------- deployments


def built_pool_type(config: dict[str, Any]) -> str:
    """The work pool type the build wrote its job variables for. A prefect.yaml without it (written
    before mlopsc recorded it, or by hand) was built for the default, `process`."""
    return ((config.get("definitions") or {}).get("mlopsc") or {}).get("work_pool_type") or "process"


def ensure_work_pool(name: str, pool_type: str) -> None:
    """Create pool `name` of `pool_type` when it is missing. An existing pool is left as it is: its
    owner chose its type and template, and a flow's code runs on any pool; only job variables
    (a kubernetes build's cpu / memory) are pool-specific, hence a warning, not a refusal."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type,
                                                   base_job_template=default_job_template(name, pool_type)))
            click.echo(f"created work pool {name!r} ({pool_type}); start a worker with: "
                       f"prefect worker start --pool {name}")
            return
    click.echo(f"work pool {name!r} ({pool.type})")
    if pool.type != pool_type:
        click.echo(f"mlopsc submit: warning: work pool {name!r} is a {pool.type} pool, but the build was made for a "
                   f"{pool_type} pool; the deployments use {name!r} as it is, and their job variables were written "
                   f"for {pool_type} workers\n  rebuild for the pool's type (mlopsc build --work-pool-type), or "
                   f"submit to a {pool_type} pool with --work-pool NAME", err=True)


def default_job_template(name: str, pool_type: str) -> dict[str, Any]:
    """Prefect's default base job template for `pool_type`, as `prefect work-pool create` gets it:
    from an installed worker class, else from the server's worker metadata (which Prefect ships,
    so an offline server has it too)."""
    import asyncio

    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    template = asyncio.run(get_default_base_job_template_for_infrastructure_type(pool_type))
    if template is None:
        raise SubmitError(f"work pool {name!r} does not exist, and Prefect has no job template for type "
                          f"{pool_type!r} here\n  create it yourself: prefect work-pool create {name} --type "
                          f"{pool_type}", EXIT["step"])
    return template


def deploy(build_dir: Path, spec: dict[str, Any], pool: str) -> str:
    """Create or update one deployment; returns its `flow/deployment` name."""
    from prefect import Flow

    entrypoint = spec["entrypoint"]
    try:
        flow = Flow.from_source(source=str(build_dir.resolve()), entrypoint=entrypoint)
    except Exception as exc:  # noqa: BLE001 - any import error of the generated module
        raise SubmitError(f"cannot load {entrypoint} from {build_dir}: {type(exc).__name__}: {exc}\n"
                          "  rebuild it with mlopsc build, and check that mlopsc[prefect] is installed",
                          EXIT["step"]) from None
    crons = [s["cron"] for s in spec.get("schedules") or [] if s.get("cron")]
    # Prefect prints a table per deployment; the one line below says the same.
    with contextlib.redirect_stdout(io.StringIO()):
        flow.deploy(
            name=spec["name"], work_pool_name=pool, build=False, push=False,
            job_variables=(spec.get("work_pool") or {}).get("job_variables") or None,
            cron=crons[0] if crons else None, parameters=spec.get("parameters") or None,
            description=spec.get("description"), tags=spec.get("tags"),
            print_next_steps=False, ignore_warnings=True,
        )
    name = f"{flow.name}/{spec['name']}"
    schedule = f", cron {crons[0]!r} (UTC)" if crons else ""
    click.echo(f"deployed {name} on work pool {pool!r}{schedule}")
    return name


# ---------------------------------------------------------------- runs


def ui_url(flow_run_id: Any) -> str:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value() or os.environ["PREFECT_API_URL"].removesuffix("/api")
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


def trigger(deployment: str, parameters: dict[str, Any]) -> Any:
    from prefect.deployments import run_deployment

    try:
        flow_run = run_deployment(deployment, parameters=parameters or None, timeout=0, as_subflow=False)
    except Exception as exc:  # noqa: BLE001 - e.g. a parameter the flow does not accept
        raise SubmitError(f"cannot start {deployment}: {exc}", EXIT["usage"]) from None
    click.echo(f"flow run {flow_run.id} ({flow_run.name})\n  {ui_url(flow_run.id)}")
    return flow_run


def follow(flow_run_id: Any, poll: float = 2.0) -> int:
    """Print the flow run's state changes and each task run as it ends, until the flow run ends."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    seen_state, seen_tasks = None, set()
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            state = flow_run.state
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            for task_run in sorted(tasks, key=lambda t: t.end_time or t.expected_start_time or 0):
                if task_run.state and task_run.state.is_final() and task_run.id not in seen_tasks:
                    seen_tasks.add(task_run.id)
                    click.echo(f"  {task_run.name}: {task_run.state.name}")
            if state and state.name != seen_state:
                seen_state = state.name
                click.echo(f"flow run {flow_run.name}: {state.name}")
            if state and state.is_final():
                if not state.is_completed() and state.message:
                    click.echo(state.message, err=True)
                return FINAL_EXIT.get(state.name, EXIT["step"])
            time.sleep(poll)
