"""The `mlopsc` command line.

Commands live beside what they drive and are loaded lazily by name, so `mlopsc --help` and
`mlopsc check` never import kfp, prefect, mlflow, sklearn or pandas:

    check, graph, fmt, diff  -> mlopsc.compiler.cli
    run, plan, monitor,      -> mlopsc.backends.local.cli
    report
    rollback, lineage        -> mlopsc.runtime.cli
    serve                    -> mlopsc.runtime.serving.cli
    lsp                      -> mlopsc.compiler.lsp.cli
    build, submit            -> here

Exit codes (documented in README and docs): see EXIT below. No Python traceback ever reaches a
user: `main` turns every error into one message (set MLOPSC_DEBUG=1 to see the traceback).
"""
from __future__ import annotations

import importlib
import os
import sys

import click

from . import TARGETS

EXIT = {
    "ok": 0,
    "spec": 1,         # the spec has errors
    "usage": 2,        # bad command line
    "check": 3,        # a data check with on_fail = stop failed
    "gate": 4,         # a gate did not pass; nothing was deployed
    "step": 5,         # a step failed (bad data, failing fit, unreachable service ...)
    "internal": 70,    # a bug in mlopsc
    "interrupted": 130,
}

COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("mlopsc.compiler.cli:check", "Validate spec files and report every error."),
    "graph": ("mlopsc.compiler.cli:graph", "Draw a spec's step graph (mermaid, dot, png, svg)."),
    "fmt": ("mlopsc.compiler.cli:fmt", "Rewrite spec files in canonical layout."),
    "diff": ("mlopsc.compiler.cli:diff", "Show what changed between two versions of a spec, and what it means."),
    "build": ("mlopsc.backends.cli:build", "Compile a spec for an orchestrator."),
    "run": ("mlopsc.backends.local.cli:run", "Run a spec on this machine (cached, resumable)."),
    "plan": ("mlopsc.backends.local.cli:plan", "Show which steps a run would execute, and why."),
    "monitor": ("mlopsc.backends.local.cli:monitor", "Run a spec's monitor blocks on this machine."),
    "report": ("mlopsc.backends.local.cli:report", "Render or open the HTML report of a local run."),
    "submit": ("mlopsc.backends.cli:submit", "Send a built pipeline to Prefect or Kubeflow."),
    "rollback": ("mlopsc.runtime.cli:rollback", "Give the alias back to the previous model version."),
    "lineage": ("mlopsc.runtime.cli:lineage", "Show which spec and data produced a model."),
    "serve": ("mlopsc.runtime.serving.cli:serve", "Serve a deployed model over HTTP, following the registry."),
    "lsp": ("mlopsc.compiler.lsp.cli:lsp", "Run the language server for editors (stdio)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, short_help = COMMANDS[name]
        module, _, attr = target.partition(":")
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            missing = getattr(exc, "name", None) or str(exc)
            return _unavailable(name, short_help, missing)
        command.short_help = command.short_help or short_help
        return command


def _unavailable(name: str, short_help: str, missing: str) -> click.Command:
    @click.command(name, short_help=short_help, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise click.UsageError(
            f"'mlopsc {name}' is not available in this install ({missing} is missing). "
            "Install it with: pip install 'mlopsc[all]'")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlopsc", prog_name="mlopsc")
def cli() -> None:
    """mlopsc compiles one .mlops spec into a pipeline for the local runner, Prefect or Kubeflow."""


@cli.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "-t", type=click.Choice(list(TARGETS)), default="local", show_default=True)
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write the generated files into.")
@click.option("--image", default=None, help="Container image the steps run in (kubeflow).")
@click.option("--work-pool", default=None, help="Prefect work pool the deployments run on.")
@click.option("--work-pool-type", type=click.Choice(["process", "kubernetes"]), default=None,
              help="Prefect work pool type; decides which per-step resources can be expressed.")
@click.option("--deploy-target", type=click.Choice(["prefect", "kubeflow"]), default=None,
              help="github-actions: on a push, submit to this orchestrator instead of mlopsc run.")
@click.option("--branch", default=None, help="github-actions: the main branch, whose pushes run or submit "
              "the pipeline [default: main].")
@click.option("--runs-on", default=None, help="github-actions: the runner label of the jobs that run or submit "
              "the pipeline [default: ubuntu-latest].")
@click.option("--strict", is_flag=True, help="Treat 'cannot express' warnings as errors.")
def build(spec: str, target: str, out_dir: str, image: str | None, work_pool: str | None,
          work_pool_type: str | None, deploy_target: str | None, branch: str | None, runs_on: str | None,
          strict: bool) -> None:
    """Compile SPEC for TARGET into OUT_DIR (for github-actions: the repository's root, which gets
    .github/workflows/PIPELINE.yml)."""
    from dataclasses import replace

    from mlopsc.compiler import load
    from mlopsc.compiler.errors import SpecError, render

    from .base import load_generator, write_files

    program = load(spec)
    generator = load_generator(target)(program, {
        "image": image, "work_pool": work_pool, "work_pool_type": work_pool_type,
        "deploy_target": deploy_target, "branch": branch, "runs_on": runs_on, "output": out_dir})
    files = generator.generate()
    diagnostics = [replace(d, severity="error") if strict else d for d in generator.diagnostics]
    if any(d.is_error for d in diagnostics):
        raise SpecError(diagnostics, source=program.source)   # main prints them, once
    for diag in diagnostics:
        click.echo(render(diag, program.source), err=True)
    try:
        written = write_files(files, out_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--target", "-t", type=click.Choice(["prefect", "kubeflow"]), required=True)
@click.option("--api-url", default=None, help="Prefect API URL (default: PREFECT_API_URL).")
@click.option("--work-pool", default=None, help="Prefect work pool for the deployments.")
@click.option("--host", default=None, help="Kubeflow Pipelines API host URL.")
@click.option("--experiment", default=None, help="Kubeflow experiment name.")
@click.option("--namespace", default=None, help="Kubeflow namespace.")
@click.option("--run", "start_run", is_flag=True, help="Start a run after submitting.")
@click.option("--wait", is_flag=True, help="Wait for the run to finish, showing progress.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Run parameter.")
def submit(build_dir: str, target: str, **options: object) -> None:
    """Create or update BUILD_DIR's pipeline on an orchestrator, and optionally run it."""
    module = importlib.import_module(f"mlopsc.backends.{target}.submit")
    code = module.submit(build_dir, **options)
    sys.exit(code or 0)


def main(argv: list[str] | None = None) -> None:
    from mlopsc.compiler.errors import SpecError, render

    try:
        # standalone_mode=False hands back ctx.exit(n) as a return value instead of exiting.
        code = cli.main(args=argv, prog_name="mlopsc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT["interrupted"])
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT["usage"])
    except SpecError as exc:
        for diag in exc.diagnostics:
            click.echo(render(diag, exc.source), err=True)
        sys.exit(EXIT["spec"] if any(d.is_error for d in exc.diagnostics) else EXIT["ok"])
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT["interrupted"])
    except Exception as exc:  # the last line of defence against tracebacks
        if os.environ.get("MLOPSC_DEBUG"):
            raise
        from mlopsc.runtime.core import StepError, StepFailed

        if isinstance(exc, StepFailed):
            click.echo(str(exc), err=True)
            sys.exit(EXIT[exc.reason])
        if isinstance(exc, StepError):
            click.echo(str(exc), err=True)
            sys.exit(EXIT["step"])
        click.echo(f"mlopsc: internal error: {type(exc).__name__}: {exc}\n"
                   "  This is a bug in mlopsc; rerun with MLOPSC_DEBUG=1 for the traceback.", err=True)
        sys.exit(EXIT["internal"])
    sys.exit(code if isinstance(code, int) else 0)
