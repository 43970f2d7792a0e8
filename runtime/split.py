"""Split stage: a Dataset into `train` and `test` Datasets, seeded and reproducible.

- random: scikit-learn's train_test_split with `random_state = seed`;
- stratified (`stratify = COLUMN`): the same, keeping each class's share in both parts;
- by time (`time_column = COLUMN`): rows sorted by that column (stable: ties keep file order); the
  last `test_size` fraction of rows is the test set. No shuffling, so the seed plays no part.
Same input and seed give the same rows in the same order, hence the same hashes.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts, tracking
from .core import RunContext, require_columns, step_error, step_result

if TYPE_CHECKING:
    import pandas as pd


def _test_rows(step: ir.Split, n: int) -> int:
    size = float(step.test_size)
    if not 0 < size < 1:
        raise step_error(step, "test_size must be a fraction of the rows", "test_size",
                         expected="a number strictly between 0 and 1", found=str(step.test_size))
    test = math.ceil(size * n)
    if test >= n:
        raise step_error(step, f"too few rows to split: {n}", "test_size",
                         expected="at least one row in each part", found=f"{n} rows, {test} for the test set")
    return test


def _by_time(step: ir.Split, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    column = step.time_column
    require_columns(step, list(df.columns), [column], role="time column", span=step.spans.get("time_column"))
    missing = int(df[column].isna().sum())
    if missing:
        raise step_error(step, f"time column {column!r} has {missing} missing value(s)", "time_column",
                         expected="a time on every row", found=f"{missing} of {len(df)} rows without one")
    ordered = df.sort_values(column, kind="stable")
    test = _test_rows(step, len(df))
    return ordered.iloc[:-test], ordered.iloc[-test:]


def _random(step: ir.Split, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    test = _test_rows(step, len(df))
    labels = None
    if step.stratify:
        column = step.stratify
        require_columns(step, list(df.columns), [column], role="stratify column",
                        span=step.spans.get("stratify"))
        labels = df[column]
        if labels.isna().any():
            raise step_error(step, f"stratify column {column!r} has {int(labels.isna().sum())} missing value(s)",
                             "stratify", expected="a class on every row",
                             found="missing values (filter them out in the source, e.g. filter = \"x == x\")")
        counts = labels.value_counts()
        single = [str(c) for c, k in counts.items() if k < 2]
        if single:
            raise step_error(step, f"cannot stratify on {column!r}: class(es) {', '.join(single)} "
                             "have a single row", "stratify", expected="at least 2 rows per class",
                             found=", ".join(f"{c}: {counts[c]}" for c in counts.index if str(c) in single))
        if test < len(counts) or len(df) - test < len(counts):
            raise step_error(step, f"cannot stratify {len(df)} rows into {len(counts)} classes with test_size "
                             f"{step.test_size}", "test_size", expected="at least one row per class in each part",
                             found=f"{test} test rows, {len(df) - test} train rows for {len(counts)} classes")
    return train_test_split(df, test_size=test, random_state=int(step.seed), shuffle=True, stratify=labels)


def run(step: ir.Split, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    df = artifacts.read_parquet(inputs["data"])
    train, test = _by_time(step, df) if step.time_column else _random(step, df)
    method = "time" if step.time_column else ("stratified" if step.stratify else "random")
    # Both parts are computed before either is written: a failure leaves neither. The files are
    # written while the step's MLflow run is logged, and complete before it ends.
    with tracking.step_run(ctx, step) as mlrun, artifacts.parquet_written(train, outputs["train"]) as train_sha, \
            artifacts.parquet_written(test, outputs["test"]) as test_sha:
        import mlflow

        hashes = {"train": train_sha, "test": test_sha}
        mlflow.log_params({"method": method, "test_size": step.test_size, "seed": step.seed,
                           "train_rows": len(train), "test_rows": len(test)})
        mlflow.set_tags({f"mlopsc.sha256.{port}": digest for port, digest in hashes.items()})
    return step_result(step, {port: (outputs[port], hashes[port]) for port in ("train", "test")},
                       method=method, rows={"train": len(train), "test": len(test)},
                       mlflow_run_id=mlrun.info.run_id)
