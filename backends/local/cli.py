"""`mlopsc run`, `plan`, `monitor` and `report`: the local runner from the command line.

Loaded lazily by backends/cli.py. Commands end with `sys.exit(code)`: under click's
`standalone_mode=False` (how `mlopsc.backends.cli.main` runs click) `ctx.exit` would become a
return value and the process would exit 0. The spec is compiled here (lark, networkx); the run itself
needs only what a generated local module has (session.py, runner.py).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from mlopsc.runtime.state_folder import STATE_FOLDER, state_folder

from .runner import RunOptions
from .session import Layout, SelectionError, run_session, select

SPEC = click.argument("spec", type=click.Path(exists=True, dir_okay=False))
PARAM = click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                     help="Override a pipeline param (repeatable).")
STATE_DIR = click.option("--state-dir", type=click.Path(file_okay=False), default=None,
                         help=f"Run state, cache and MLflow store [default: {STATE_FOLDER} next to the spec].")
JOBS = click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                    help="Steps run at the same time [default: the core count].")
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document (the run record).")
NO_CACHE = click.option("--no-cache", is_flag=True, help="Execute the selected steps even if cached.")


def compile_spec(spec: str, params: tuple[str, ...]) -> tuple[Any, dict[str, Any], Layout]:
    from mlopsc.compiler import ir, load
    from mlopsc.compiler.cli import parse_params
    from mlopsc.compiler.errors import render

    program = load(spec, parse_params(params))
    for diag in program.diagnostics:
        click.echo(render(diag, program.source), err=True)
    graph = program.graph
    monitors = {s.name: graph.monitor_steps(s.name) for s in program.pipeline.steps if isinstance(s, ir.Monitor)}
    layout = Layout(pipeline_steps=graph.pipeline_steps(), monitors=monitors)
    return program, program.pipeline.model_dump(mode="json"), layout


def options_for(spec: str, state_dir: str | None, **kw: Any) -> RunOptions:
    return RunOptions(state_dir=state_dir or state_folder(Path(spec).resolve().parent), **kw)


@click.command()
@SPEC
@PARAM
@click.option("--only", "only", metavar="STEP", default=None,
              help="Run this step only (a monitor: with what it needs); upstream comes from the cache.")
@click.option("--from", "from_step", metavar="STEP", default=None,
              help="Run this step and everything downstream of it; upstream comes from the cache.")
@NO_CACHE
@click.option("--force-gate", is_flag=True, help="Pass a failing gate (recorded as forced, with your user name).")
@JOBS
@JSON
@STATE_DIR
def run(spec: str, params: tuple[str, ...], only: str | None, from_step: str | None,
        no_cache: bool, force_gate: bool, jobs: int | None, as_json: bool, state_dir: str | None) -> None:
    """Run SPEC's pipeline on this machine: cached, resumable, in parallel where the graph allows.

    Exit status: 0 ok, 1 spec error, 2 usage error, 3 a check stopped the run, 4 the gate did not
    pass (nothing deployed), 5 a step failed, 130 interrupted."""
    if only and from_step:
        raise click.UsageError("--only and --from cannot be combined")
    program, pipeline, layout = compile_spec(spec, params)
    options = options_for(spec, state_dir, no_cache=no_cache, force_gate=force_gate, jobs=jobs or 0)
    sys.exit(run_session(pipeline, layout, program.params, spec, options, only=only,
                         from_step=from_step, as_json=as_json))


@click.command()
@SPEC
@PARAM
@click.option("--only", "only", metavar="MONITOR", default=None, help="Run this monitor only.")
@NO_CACHE
@JOBS
@JSON
@STATE_DIR
def monitor(spec: str, params: tuple[str, ...], only: str | None, no_cache: bool,
            jobs: int | None, as_json: bool, state_dir: str | None) -> None:
    """Run SPEC's monitor blocks; when a `retrain` action fires, run the training pipeline again on
    the current data and report it."""
    program, pipeline, layout = compile_spec(spec, params)
    if not layout.monitors:
        raise click.UsageError(f"{spec} has no monitor block")
    if only is not None and only not in layout.monitors:
        raise click.UsageError(f"--only {only}: not a monitor; monitors: {', '.join(sorted(layout.monitors))}")
    options = options_for(spec, state_dir, no_cache=no_cache, jobs=jobs or 0)
    sys.exit(run_session(pipeline, layout, program.params, spec, options, only=only,
                         monitors_only=True, as_json=as_json))


@click.command()
@SPEC
@PARAM
@click.option("--only", "only", metavar="STEP", default=None, help="Plan this step only.")
@click.option("--from", "from_step", metavar="STEP", default=None, help="Plan this step and its downstream.")
@NO_CACHE
@click.option("--force-gate", is_flag=True, help="Plan as if the gate were forced.")
@JSON
@STATE_DIR
def plan(spec: str, params: tuple[str, ...], only: str | None, from_step: str | None, no_cache: bool,
         force_gate: bool, as_json: bool, state_dir: str | None) -> None:
    """Show, per step, whether a run would execute it or serve it from cache, and why. Executes
    nothing (file sources are predicted from their file's hash)."""
    from .plan import plan_lines, plan_steps

    program, pipeline, layout = compile_spec(spec, params)
    try:
        selection = select(pipeline, layout, only, from_step)
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    options = options_for(spec, state_dir, no_cache=no_cache, force_gate=force_gate)
    rows = plan_steps(pipeline, selection, program.params, os.fspath(spec), options)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo("\n".join(plan_lines(rows)))


@click.command()
@click.argument("run_id", default="latest", required=False)
@click.option("--spec", type=click.Path(exists=True, dir_okay=False), default=None,
              help=f"Use the state folder beside this spec [default: {STATE_FOLDER} in the current folder].")
@STATE_DIR
@click.option("--open", "open_it", is_flag=True, help="Open the report in a web browser.")
def report(run_id: str, spec: str | None, state_dir: str | None, open_it: bool) -> None:
    """Render the HTML report of a local run again and print its path: RUN_ID, or `latest`.
    Figures that did not change are reused (state folder, reports/figures/)."""
    import webbrowser

    from mlopsc.runtime.report import write_report

    from .state import StateDir, read_json

    folder = state_dir or state_folder(Path(spec).resolve().parent if spec else Path.cwd())
    state = StateDir(folder)
    runs = sorted(p.stem for p in (state.root / "runs").glob("*.json"))
    if not runs:
        raise click.ClickException(f"no run recorded in {state.root}: run `mlopsc run SPEC` first, "
                                   "or pass --spec / --state-dir")
    if run_id == "latest":
        run_id = runs[-1]
    elif run_id not in runs:
        import difflib

        close = difflib.get_close_matches(run_id, runs, n=1, cutoff=0.5)
        raise click.ClickException(f"no run {run_id} in {state.root}" + (f"; did you mean {close[0]}?" if close
                                   else f"; the latest is {runs[-1]}"))
    record = read_json(state.run_path(run_id))
    if not isinstance(record, dict):
        raise click.ClickException(f"the record of run {run_id} cannot be read: {state.run_path(run_id)}")
    path = write_report(record, state.report_path(run_id), state.figure_cache)
    click.echo(str(path))
    if open_it and not webbrowser.open(path.as_uri()):
        click.echo("no web browser to open it with here; open the file above", err=True)
