"""Served sources: the prediction log of `mlopsc serve` as a dataset (`source live { served = DEPLOY }`).

Where: the source's `log` URI, else the folder the server logs to by default for the deploy's
registry, `<state folder beside the spec>/serving/<registry>/` (state_folder.serving_log_folder,
the one function both use). What: every logged row (runtime/serving/prediction_log.py gives the
columns: request_id, timestamp, model_name, model_version, the features, prediction, proba_<class>,
latency_ms) that arrived within `window` seconds of now, oldest first, with a `label` column: the
latest feedback label given for the row's request id, missing where none came. Labels are logged
as text; a regression model's are read back as numbers.
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

from mlopsc.compiler import ir

from .core import RunContext, step_error

if TYPE_CHECKING:
    import pandas as pd


def log_uri(step: ir.Source, ctx: RunContext) -> str:
    """The log folder the source reads: `log`, else the server's default for the deploy's registry."""
    from .state_folder import serving_log_folder

    if step.log:
        return step.log
    if not step.registry:
        raise step_error(step, "a served source needs its deploy's registry", "served",
                         expected="a spec compiled with its deploy step", found="no registry")
    spec_dir = os.path.dirname(os.path.abspath(ctx.spec_path)) if ctx.spec_path else os.getcwd()
    return str(serving_log_folder(spec_dir, step.registry))


def read_served(step: ir.Source, ctx: RunContext) -> pd.DataFrame:
    """The logged rows in the window, joined with their feedback labels (see the module docstring)."""
    import pandas as pd

    from .serving import read_feedback_log, read_prediction_log

    uri = log_uri(step, ctx)
    since = timedelta(seconds=step.window) if step.window else None
    try:
        rows = read_prediction_log(uri, since)
        feedback = read_feedback_log(uri)
    except (OSError, ValueError) as exc:
        raise step_error(step, f"could not read the prediction log at {uri}", "log" if step.log else "served",
                         expected="a folder written by `mlopsc serve` (predictions/part-*.parquet)",
                         found=f"{type(exc).__name__}: {exc}") from None
    if rows.empty:
        within = f" in the last {_duration(step.window)}" if step.window else ""
        raise step_error(step, f"no predictions logged{within} under {uri}", "window" if step.window else "served",
                         expected=f"rows logged by `mlopsc serve` for {step.served} (registry {step.registry})",
                         found="0 rows")
    labels = feedback.drop_duplicates("request_id", keep="last").set_index("request_id")["label"]
    rows = rows.copy()
    rows["label"] = rows["request_id"].map(labels)
    if pd.api.types.is_float_dtype(rows["prediction"]):     # a regressor's: labels are numbers too
        rows["label"] = pd.to_numeric(rows["label"], errors="coerce")
    return rows.reset_index(drop=True)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
