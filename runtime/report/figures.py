"""Figures of a report: what each one depends on, where drawn ones are kept, how they are drawn.

A `FigureSpec` names a drawing function and the plain data it reads (artifact URIs, names,
numbers); its `key` hashes what determines the picture (artifact content hashes, not URIs), so a
cached re-run, whose steps' outputs did not change, reuses the SVG drawn the first time
(`FigureCache`, one file per key, written atomically). Drawing imports matplotlib (bare `Figure`
objects, no pyplot, nothing interactive), pandas and pyarrow, only when a figure is not cached.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Part of every key: a change to how figures look must not reuse pictures drawn by older code.
DRAWING_VERSION = "1"
# Modules that draw: `kind` -> "module:function" (each function takes the spec's inputs).
DRAWERS = {
    "graph": "graph", "confusion": "evaluation_figures", "roc": "evaluation_figures",
    "precision_recall": "evaluation_figures", "actual_vs_predicted": "evaluation_figures",
    "residuals": "evaluation_figures", "importance": "evaluation_figures", "fairness": "evaluation_figures",
    "column": "monitor_figures", "prediction": "monitor_figures", "latency": "monitor_figures",
}
STYLE = {
    "svg.fonttype": "none",            # text stays text: smaller files, selectable, crisp
    "svg.hashsalt": "mlopsc",          # ids the same from run to run
    "text.parse_math": False,          # a `$` in a column name is a dollar sign, not TeX
    "font.family": "sans-serif", "font.sans-serif": ["Helvetica", "Arial", "DejaVu Sans"],
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": "#e6e6e6",
    "axes.axisbelow": True, "axes.edgecolor": "#888888", "xtick.color": "#444444", "ytick.color": "#444444",
}
REFERENCE, CURRENT, CANDIDATE, CHAMPION = "#8c9bab", "#e07b39", "#2f6db5", "#a0a7b0"
# Drawn even by a renderer that may not draw: the step graph needs the standard library (and `dot`).
LIGHT = frozenset({"graph"})


class NeedsDrawing(Exception):
    """A figure (or a registry lookup) is not cached and this renderer may not draw it."""


@dataclass(frozen=True)
class FigureSpec:
    kind: str                          # a key of DRAWERS (and the drawing function's name)
    title: str
    inputs: dict[str, Any]             # what the drawing function reads
    depends: dict[str, Any] = field(default_factory=dict)   # what decides the picture: hashes, values

    @property
    def key(self) -> str:
        text = json.dumps([self.kind, DRAWING_VERSION, self.title, self.depends], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


class FigureCache:
    """Drawn figures by key, in a folder (none: nothing is kept)."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        self.folder = Path(folder) if folder else None
        self.drawn: list[str] = []     # kinds drawn by this renderer, in order (tests and the bench read it)

    def get(self, key: str, suffix: str = ".svg") -> str | None:
        if self.folder is None:
            return None
        try:
            return (self.folder / f"{key}{suffix}").read_text(encoding="utf-8")
        except OSError:
            return None

    def put(self, key: str, text: str, suffix: str = ".svg") -> None:
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.folder / f"{key}{suffix}")
        except OSError:
            pass   # a figure not kept is drawn again next time; the report itself is complete


def figure_svg(spec: FigureSpec, cache: FigureCache, draw: bool) -> str:
    """The spec's SVG from the cache, else drawn (when `draw`) and cached."""
    found = cache.get(spec.key)
    if found is not None:
        return found
    if not draw and spec.kind not in LIGHT:
        raise NeedsDrawing(spec.kind)
    module = importlib.import_module(f"{__package__}.{DRAWERS[spec.kind]}")
    svg = getattr(module, spec.kind)(**spec.inputs)
    cache.drawn.append(spec.kind)
    cache.put(spec.key, svg)
    return svg


# ---------------------------------------------------------------- for the drawing modules


def new_figure(width: float, height: float) -> Any:
    """A bare matplotlib Figure (inches) in the report's style; `svg_of` draws it."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), dpi=100)


def axes_in(fig: Any, left: float, bottom: float, right: float = 0.15, top: float = 0.3) -> Any:
    """Axes with margins in inches (room for tick labels whatever the figure's size)."""
    width, height = fig.get_size_inches()
    return fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))


def legend_above(ax: Any, columns: int = 2) -> None:
    """The legend in one row above the axes, where it covers no bar."""
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=columns, frameon=False, borderaxespad=0,
              handlelength=1.4, columnspacing=1.2)


def svg_of(fig: Any) -> str:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue().decode("utf-8")


def styled(function: Any) -> Any:
    """Run a drawing function with the report's matplotlib style in effect (axes read rcParams
    when they are made)."""
    def drawing(**inputs: Any) -> str:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return function(**inputs)
    drawing.__name__ = function.__name__
    drawing.__doc__ = function.__doc__
    return drawing


def read_columns(uri: str, columns: list[str]) -> Any:
    """Those of `columns` that the Parquet dataset at `uri` has, as a DataFrame."""
    import pyarrow.parquet as pq
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    with fs.open(path, "rb") as fh:
        parquet = pq.ParquetFile(fh)
        present = [c for c in columns if c in set(parquet.schema_arrow.names)]
        return parquet.read(columns=present).to_pandas()


def short(text: Any, width: int = 28) -> str:
    """A label that fits an axis: long category or column names are cut with an ellipsis."""
    text = str(text)
    return text if len(text) <= width else text[:width - 1] + "…"
