"""The HTML report of a pipeline or monitor run: one self-contained file (inline CSS, figures as
SVG `data:` images, no script, no network) showing the run, its checks, the evaluation against
the champion, permutation importance, fairness, the gate and the monitor. See docs/reports.md and
this folder's README (contracts).

    collect.py            run record + step artifacts -> a plain model (stdlib only)
    graph.py              the step graph, coloured by status (Graphviz `dot`, else its own layout)
    figures.py            FigureSpec (what a figure depends on), FigureCache, matplotlib helpers
    evaluation_figures.py confusion matrix, ROC, precision-recall, predicted vs actual, residuals,
                          importance bars, fairness rates
    monitor_figures.py    reference vs current per column, predictions, latency over time
    render.py             jinja2 (autoescape) -> report.html, written atomically
    runs.py               the backends' entry points: record layout, write + log to MLflow

Importing this package imports nothing heavy: jinja2 when a page is laid out, matplotlib,
pandas and pyarrow when a figure is drawn, MLflow when the registry is read or the report logged.
"""
from __future__ import annotations

from .figures import NeedsDrawing
from .render import render, write_report
from .runs import layout_of, record_from_results, report_remote_run, report_run

__all__ = ["NeedsDrawing", "layout_of", "record_from_results", "render", "report_remote_run",
           "report_run", "write_report"]
