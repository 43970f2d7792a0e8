"""The HTML report at the end of a local run (`reports/<run_id>/report.html` in the state folder).

A run that executed steps has workers: one renders the report (its zygote imported jinja2 and
matplotlib while the steps ran) and logs it to the run's MLflow parent run. A fully cached run
has none and opens no MLflow run; its figures were drawn by the run that computed what they show
(`reports/figures/`, keyed by content hashes), so this process lays the page out itself, with
jinja2 alone, and starts a worker only when a figure or a registry read is missing.

A report that cannot be written never changes how the run ends: the record says why instead.
"""
from __future__ import annotations

from typing import Any

from mlopsc.runtime.report import NeedsDrawing, write_report

from .pool import WorkerPool
from .preload import REPORT_MODULES
from .state import StateDir


def write_run_report(pool: WorkerPool, state: StateDir, context: dict[str, Any],
                     record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(path of the report, None) or (None, why it was not written)."""
    path, cache = state.report_path(record["run_id"]), state.figure_cache
    if not pool.workers:
        try:
            return str(write_report(record, path, cache, draw=False)), None
        except (NeedsDrawing, ImportError):    # a worker draws (an install without jinja2 fails there)
            pass
        except (OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        pool.preload(REPORT_MODULES)
    try:
        answer = pool.call("mlopsc.runtime.report:report_run", context, record, str(path), str(cache),
                           log=state.log_path(record["run_id"], "_report"),
                           worker=pool.idle_worker(REPORT_MODULES))
    except RuntimeError as exc:     # the worker died
        return None, str(exc)
    if not answer["ok"]:
        return None, answer["error"]["message"]
    return answer["result"], None
