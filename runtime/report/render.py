"""One self-contained HTML file per run: the collected model laid out by a jinja2 template.

Every value reaches the page through jinja2's autoescaping (a column called `<script>` is text);
figures are SVG documents embedded as `data:` URIs of `<img>` elements, which never run scripts;
the page's Content-Security-Policy allows inline styles and `data:` images only, so it can load
nothing from anywhere. Writes are atomic: a reader sees the old report or the new one.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .collect import Report, collect
from .figures import FigureCache, NeedsDrawing, figure_svg


def render(record: dict[str, Any], cache: FigureCache, *, draw: bool = True, registry: bool = True,
           use_dot: bool = True) -> str:
    """The report of `record` as HTML. `draw=False`: only cached figures and registry reads, else
    NeedsDrawing. `registry=False`: no champion is looked up beyond what the gate recorded."""
    lookup = champion_lookup(record, cache, draw) if registry else None
    report = collect(record, lookup, use_dot=use_dot and shutil.which("dot") is not None)
    images: dict[str, str | None] = {}
    for spec in report.figures:
        try:
            images[spec.key] = data_uri(figure_svg(spec, cache, draw))
        except NeedsDrawing:
            raise
        except Exception as exc:  # noqa: BLE001 - a figure whose data is gone must not cost the whole report
            images[spec.key] = None
            report.problems.append(f"the figure {spec.title!r} could not be drawn: {type(exc).__name__}: {exc}")
    return page(report, images, cache.folder / "templates" if cache.folder else None)


def page(report: Report, images: dict[str, str | None], compiled: Path | None = None) -> str:
    from importlib.resources import files

    from markupsafe import Markup
    from mlopsc.runtime import __version__

    css = Markup(files(__package__).joinpath("templates", "report.css").read_text(encoding="utf-8"))  # ours, not data
    template = environment(compiled).get_template("report.html.j2")
    return template.render(report=report, images=images, version=__version__, css=css,
                           generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def environment(compiled: Path | None = None) -> Any:
    """The template environment; `compiled` keeps the compiled template between processes (it
    costs more to compile than to render: a cached re-run's report is mostly that)."""
    import jinja2

    cache = jinja2.FileSystemBytecodeCache(str(compiled)) if compiled is not None else None
    if compiled is not None:
        compiled.mkdir(parents=True, exist_ok=True)
    env = jinja2.Environment(loader=jinja2.PackageLoader("mlopsc.runtime.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, bytecode_cache=cache)
    env.filters.update(num=number, seconds=seconds, signed=signed, pvalue=pvalue, words=words)
    return env


def write_report(record: dict[str, Any], path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None, *,
                 draw: bool = True, registry: bool = True) -> Path:
    """Render and write atomically; returns the path."""
    html = render(record, FigureCache(cache_dir), draw=draw, registry=registry)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.replace(tmp, target)
    return target


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def champion_lookup(record: dict[str, Any], cache: FigureCache, draw: bool) -> Any:
    """(registry, alias, version) -> {version, metrics, model_sha256} or None, read from the run's
    MLflow registry. A numbered version does not change: its answer is kept with the figures.
    Who holds an alias now (version None) is read every time."""
    def lookup(registry_name: str, alias: str, version: str | None) -> dict[str, Any] | None:
        key = "champion-" + _hash([record.get("tracking_uri"), registry_name, alias, version])
        if version is not None:
            kept = cache.get(key, ".json")
            if kept is not None:
                return json.loads(kept)
        if not draw:
            raise NeedsDrawing("registry")
        found = read_version(record.get("tracking_uri"), registry_name, alias, version)
        if version is not None:
            cache.put(key, json.dumps(found), ".json")
        return found
    return lookup


def read_version(tracking_uri: str | None, registry_name: str, alias: str, version: str | None) -> dict | None:
    """A version's metrics (with permutation importance) from the registry; None when nothing
    holds the alias or the store cannot be read (the report then says no champion was found)."""
    from mlopsc.runtime import registry

    try:
        client = registry.client(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""))
        found = (client.get_model_version(registry_name, version) if version is not None
                 else registry.version_by_alias(client, registry_name, alias))
        if found is None:
            return None
        return {"version": str(found.version), "metrics": registry.version_metrics(client, found),
                "model_sha256": found.tags.get("mlopsc.model_sha256")}
    except Exception:  # noqa: BLE001 - a report must not fail because the registry is away
        return None


def _hash(parts: list[Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


# ---------------------------------------------------------------- filters


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def signed(value: Any, digits: int = 4) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{value:+.{digits}f}"


def pvalue(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:.2e}" if 0 < value < 0.001 else f"{value:.3f}"


def seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def words(value: Any) -> str:
    return str(value).replace("_", " ")
