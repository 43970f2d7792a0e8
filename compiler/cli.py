"""`mlopsc check`, `mlopsc graph`, `mlopsc fmt`, `mlopsc diff`: the front end's commands.

Loaded lazily by `mlopsc.backends.cli`; imports nothing heavy at module level, so `mlopsc check`
never pays for kfp, prefect, mlflow, sklearn or pandas (tests/test_imports.py holds this).
Diagnostics go to stderr (one block per diagnostic, then a one-line summary); IR and drawings to
stdout. Exit codes: 0 clean (warnings allowed), 1 spec errors, 2 usage errors. The commands end with
`sys.exit(code)`, not `ctx.exit`: under `standalone_mode=False` (how `mlopsc.backends.cli.main`
runs click) `ctx.exit(1)` is turned into a return value and the process would exit 0.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
from pathlib import Path

import click

from .errors import Diagnostic, SpecError, render
from .spec_files import SPEC_SUFFIX, specs_in

EXISTING_FILE = click.Path(exists=True, dir_okay=False)
FILES_OR_FOLDERS = click.Path(exists=True)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=FILES_OR_FOLDERS)
@click.option("--emit-ir", is_flag=True, help="Print the validated IR as JSON on stdout.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a pipeline param.")
def check(paths: tuple[str, ...], emit_ir: bool, params: tuple[str, ...]) -> None:
    """Validate specs (files, or folders searched recursively) and report every error and warning."""
    from . import load

    overrides = parse_params(params)
    files = spec_paths(paths)
    counts = {"error": 0, "warning": 0}
    documents = []
    for file in files:
        try:
            with _without_cyclic_gc():
                program = load(file, overrides)
        except SpecError as exc:
            report(exc.diagnostics, exc.source, counts)
            continue
        report(list(program.diagnostics), program.source, counts)
        if emit_ir:
            documents.append(program.pipeline.model_dump_json(indent=2))
    if documents:
        click.echo(documents[0] if len(files) == 1 else "[\n" + ",\n".join(documents) + "\n]")
    click.echo(summary(len(files), counts), err=True)
    sys.exit(1 if counts["error"] else 0)


@click.command()
@click.argument("file", type=EXISTING_FILE)
@click.option("--format", "-f", "fmt", type=click.Choice(["mermaid", "dot", "png", "svg"]), default="mermaid",
              show_default=True)
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False),
              help="Write here instead of stdout (required for png and svg).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a pipeline param.")
def graph(file: str, fmt: str, out: str | None, params: tuple[str, ...]) -> None:
    """Draw FILE's step graph: nodes are steps, edges point from producer to consumer."""
    from . import load
    from .render_graph import GraphvizError, render_image, to_dot, to_mermaid

    if fmt in ("png", "svg") and out is None:
        raise click.UsageError(f"--format {fmt} writes an image: give a file with -o, e.g. -o graph.{fmt}")
    try:
        with _without_cyclic_gc():
            program = load(file, parse_params(params))
    except SpecError as exc:
        counts = {"error": 0, "warning": 0}
        report(exc.diagnostics, exc.source, counts)
        click.echo(summary(1, counts), err=True)
        sys.exit(1)
    text = to_mermaid(program.graph) if fmt == "mermaid" else to_dot(program.graph)
    if fmt in ("png", "svg"):
        try:
            render_image(text, fmt, out)
        except GraphvizError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {out}", err=True)
    elif out is not None:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=FILES_OR_FOLDERS)
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if a file is not formatted.")
def fmt(paths: tuple[str, ...], check_only: bool) -> None:
    """Rewrite specs (files, or folders searched recursively) in canonical layout (comments kept;
    the IR does not change)."""
    from .fmt import format_spec

    files = spec_paths(paths)
    changed, failed = [], 0
    for file in files:
        try:
            text = Path(file).read_text(encoding="utf-8")
            formatted = format_spec(text, file)
        except (OSError, UnicodeDecodeError) as exc:
            report([Diagnostic("E001", f"cannot read {file}: {exc}")], None, {"error": 0, "warning": 0})
            failed += 1
            continue
        except SpecError as exc:
            report(exc.diagnostics, exc.source or text, {"error": 0, "warning": 0})
            failed += 1
            continue
        if formatted != text:
            changed.append(file)
            if check_only:
                click.echo(f"would reformat {file}", err=True)
            else:
                try:
                    Path(file).write_text(formatted, encoding="utf-8")
                except OSError as exc:
                    raise click.ClickException(f"cannot write {file}: {exc.strerror or exc}") from None
                click.echo(f"reformatted {file}", err=True)
    verb = "would be reformatted" if check_only else "reformatted"
    click.echo(f"{_plural(len(changed), 'file')} {verb}, {len(files) - len(changed) - failed} unchanged"
               + (f", {failed} with errors" if failed else ""), err=True)
    sys.exit(1 if failed or (check_only and changed) else 0)


@click.command()
@click.argument("spec", type=EXISTING_FILE)
@click.argument("new", type=EXISTING_FILE, required=False)
@click.option("--against", "ref", metavar="GIT_REF", default=None,
              help="Compare SPEC with its version at this git revision (git show GIT_REF:SPEC).")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="markdown: for a pull-request comment or a CI job summary.")
def diff(spec: str, new: str | None, ref: str | None, fmt: str) -> None:
    """What changed between two versions of a spec, as a pipeline: steps added, removed, renamed or
    changed, params, which steps a run would execute again, and what it means for gates and deploys.

    \b
        mlopsc diff OLD NEW
        mlopsc diff SPEC --against GIT_REF
    """
    from .diff import diff_programs
    from .diff_render import render
    from .git_files import GitError, show

    if (new is None) == (ref is None):
        raise click.UsageError("give two specs (mlopsc diff OLD NEW) or one and a revision "
                               "(mlopsc diff SPEC --against GIT_REF)")
    if ref is None:
        old_label, old_text, new_label = spec, _read(spec), new
        old_files = _files_beside(spec)
    else:
        old_label, new_label, new = f"{ref}:{spec}", spec, spec
        try:
            data = show(ref, spec)
        except GitError as exc:
            raise click.UsageError(f"--against {ref}: {exc}") from None
        if data is None:
            raise click.UsageError(f"--against {ref}: {spec} does not exist in {ref}")
        old_text = data.decode("utf-8", "replace")

        def old_files(path: str) -> bytes | None:
            try:
                return show(ref, os.path.join(os.path.dirname(spec), path))
            except GitError:
                return None
    programs = _compile_both([(old_label, old_text), (new_label, _read(new))])
    result = diff_programs(*programs, old_label=old_label, new_label=new_label,
                           old_files=old_files, new_files=_files_beside(new))
    click.echo(render(result, fmt), nl=False)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _compile_both(versions: list[tuple[str, str]]) -> list:
    """Both versions compiled, or every diagnostic of both and exit status 1."""
    from . import loads

    programs, counts, failed = [], {"error": 0, "warning": 0}, False
    for label, text in versions:
        try:
            programs.append(loads(text, label))
        except SpecError as exc:
            report(exc.diagnostics, exc.source, counts)
            failed = True
    if failed:
        click.echo(summary(len(versions), counts), err=True)
        sys.exit(1)
    return programs


def _files_beside(spec: str):
    """Reads the files a spec's sources name, relative to the spec's folder (None if unreadable)."""
    folder = os.path.dirname(spec)

    def read(path: str) -> bytes | None:
        try:
            return Path(folder, path).read_bytes()
        except OSError:
            return None
    return read


def spec_paths(paths: tuple[str, ...]) -> list[str]:
    """Files as given, folders replaced by the specs in them (`spec_files.py`: recursive, sorted,
    skipping hidden and state folders and virtual environments), each file once. A folder with no
    spec in it is a usage error, as a missing file is."""
    files: dict[str, str] = {}                       # normalised path -> the path as shown
    for path in paths:
        found = [str(p) for p in specs_in(path)] if os.path.isdir(path) else [path]
        if not found:
            raise click.UsageError(f"no {SPEC_SUFFIX} spec in folder {path!r} (hidden folders, state folders "
                                   "and virtual environments are not searched)")
        for file in found:
            files.setdefault(os.path.normpath(file), file)
    return list(files.values())


@contextlib.contextmanager
def _without_cyclic_gc():
    """Compiling a spec allocates many small objects and no garbage cycles. The cyclic collector's
    scans of them, while compiling and again at interpreter exit, were ~20% of checking a 1000-step
    spec (0.52 s -> 0.43 s CPU, bench/check_speed.py). So: no collection while compiling, and the
    objects then go to the permanent generation (gc.freeze), which later collections skip. They
    are still freed by reference counting; a command runs once per process."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def parse_params(params: tuple[str, ...]) -> dict[str, str]:
    """`("test_size=0.3",)` -> `{"test_size": "0.3"}`; a usage error for anything else."""
    out = {}
    for item in params:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        out[name.strip()] = value
    return out


def report(diagnostics: list[Diagnostic], source: str | None, counts: dict[str, int]) -> None:
    """Print each diagnostic on stderr, coloured when stderr is a terminal, and count them."""
    colour = _colour_console()
    for diag in diagnostics:
        counts[diag.severity] += 1
        text = render(diag, source)
        if colour is None:
            click.echo(text, err=True)
        else:
            colour.print(_styled(text, diag.severity), highlight=False, soft_wrap=True)


def summary(files: int, counts: dict[str, int]) -> str:
    return (f"{_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')} "
            f"in {_plural(files, 'file')}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _colour_console():
    """A rich Console on stderr when it is a colour terminal, else None (plain text, nothing imported)."""
    if not sys.stderr.isatty() or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return None
    from rich.console import Console

    return Console(stderr=True)


def _styled(text: str, severity: str):
    from rich.text import Text

    styled = Text()
    for i, line in enumerate(text.split("\n")):
        if i == 0:
            head, sep, message = line.partition(f"{severity}[")
            styled.append(head)
            styled.append(sep + message.partition("]")[0] + "]", style="bold red" if severity == "error"
                          else "bold yellow")
            styled.append(message.partition("]")[2], style="bold")
        elif line.lstrip().startswith("^"):
            styled.append(line, style="red" if severity == "error" else "yellow")
        elif line.startswith("  hint:"):
            styled.append(line, style="cyan")
        else:
            styled.append(line)
        styled.append("\n")
    styled.rstrip()
    return styled
