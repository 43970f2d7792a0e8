"""The measurements behind docs/benchmarks.md's explanations of the scale bench, each apart:

    .venv/bin/python bench/scale_costs.py [--rows 1000000] [--runs 5] [--only fork,startup,write]

- fork: the scale bench's model (bench/baseline_scale.py's Pipeline: ordinal codes marked
  categorical, HistGradientBoostingClassifier of 100 iterations) fitted on the table's training
  part (`amount > 0`, the first 80 % in time) in a fresh process, and in a process forked, as the
  local runner's zygote forks its workers, from one that has imported pandas, scikit-learn, skops
  and MLflow and run nothing. One fit each per run, alternated.
- startup: what a command pays before its first step, each piece in fresh processes: the process,
  CLI and compiling bench/scale.mlops (`mlopsc check`); the zygote's imports (backends/local/
  preload.py's COMMON and a SQLite store's tracking modules); opening a new and an existing MLflow
  SQLite store and starting a run in it (less `import mlflow`).
- write: what a step pays to hand its Dataset on, on the table: the content hash
  (`artifacts.dataset_sha256`), the Parquet write alone, the two as a step does them (the write on
  a thread: `artifacts.write_parquet`), sha256 of the written file's bytes for comparison, and the
  copy of that file that a kfp task makes of each input (`shutil.copyfile`).

Medians of --runs. The table comes from bench/gen_data.py (bench/scale_bench.py's --data folder).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_bench

PYTHON, MLOPSC, REPO = scale_bench.PYTHON, scale_bench.MLOPSC, scale_bench.REPO
FIT = """
import os, resource, sys, time
import pandas as pd
NUMERIC = ["amount"] + [f"x{i:02d}" for i in range(1, 15)]
CATEGORICAL = ["channel", "region", "merchant"]
def fit(train):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, max_categories=255)
    model = Pipeline([("preprocess", ColumnTransformer([("numeric", "passthrough", NUMERIC),
                                                        ("categorical", codes, CATEGORICAL)])),
                      ("estimator", HistGradientBoostingClassifier(max_iter=100, random_state=0,
                                                                   categorical_features=[15, 16, 17]))])
    start = time.perf_counter()
    model.fit(train[NUMERIC + CATEGORICAL], train["label"])
    print(time.perf_counter() - start, flush=True)
table = pd.read_parquet(sys.argv[1], filters=[("amount", ">", 0)]).sort_values("event_time", kind="stable")
train = table.iloc[:int(len(table) * 0.8)]
del table
if sys.argv[2] == "fresh":
    fit(train)
else:   # what the zygote does: imports, and nothing that starts OpenMP's threads
    import mlflow, mlflow.sklearn, skops.io, sklearn.compose, sklearn.ensemble, sklearn.model_selection
    pid = os.fork()
    if pid == 0:
        fit(train)
        os._exit(0)
    os.waitpid(pid, 0)
"""
STORE = ("import mlflow, sys; mlflow.set_tracking_uri('sqlite:///' + sys.argv[1]); "
         "mlflow.set_experiment('x'); mlflow.start_run(); mlflow.end_run()")


def median_seconds(command: list[str], runs: int, prepare=None) -> float:
    times = []
    for _ in range(runs):
        if prepare:
            prepare()
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fork(table: Path, runs: int) -> None:
    times: dict[str, list[float]] = {"fresh": [], "forked": []}
    for i in range(runs):
        for how in (("fresh", "forked") if i % 2 == 0 else ("forked", "fresh")):
            done = subprocess.run([PYTHON, "-c", FIT, str(table), how], check=True, capture_output=True, text=True)
            times[how].append(float(done.stdout.split()[-1]))
    for how, values in times.items():
        print(f"fit, {how} process: {statistics.median(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})")


def startup(runs: int) -> None:
    from mlopsc.backends.local.preload import COMMON, tracking_modules

    python = median_seconds([PYTHON, "-c", "pass"], runs)
    print(f"process, CLI and compile (mlopsc check): {median_seconds([MLOPSC, 'check', str(REPO / 'bench' / 'scale.mlops')], runs):.2f} s")
    imports = median_seconds([PYTHON, "-c", f"import {', '.join(COMMON + tracking_modules('sqlite:///x'))}"], runs)
    print(f"the zygote's imports: {imports - python:.2f} s")
    mlflow = median_seconds([PYTHON, "-c", "import mlflow"], runs)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "mlflow.db"
        new = median_seconds([PYTHON, "-c", STORE, str(db)], runs, prepare=lambda: db.unlink(missing_ok=True))
        existing = median_seconds([PYTHON, "-c", STORE, str(db)], runs)
    print(f"a new MLflow SQLite store and a run in it: {new - mlflow:.2f} s; an existing one: {existing - mlflow:.2f} s")


def write(table: Path, runs: int) -> None:
    import fsspec
    from mlopsc.runtime import artifacts

    frame = artifacts.read_parquet(str(table))
    with tempfile.TemporaryDirectory() as tmp:
        written, copy = os.path.join(tmp, "written.parquet"), os.path.join(tmp, "copy.parquet")
        local = fsspec.filesystem("file")
        pieces = {"content hash": lambda: artifacts.dataset_sha256(frame),
                  "Parquet write": lambda: artifacts._write_table(artifacts._to_table(frame), local, written),
                  "hash and write, as a step does": lambda: artifacts.write_parquet(frame, written),
                  "sha256 of the file's bytes": lambda: hashlib.sha256(Path(written).read_bytes()).hexdigest(),
                  "copy of the file (a kfp task's input)": lambda: shutil.copyfile(written, copy)}
        print(f"{len(frame):,} rows x {len(frame.columns)} columns; the file {os.path.getsize(table) / 2**20:.0f} MiB "
              "as generated")
        for name, piece in pieces.items():
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                piece()
                times.append(time.perf_counter() - start)
            print(f"{name}: {statistics.median(times):.2f} s")
        print(f"the written Dataset: {os.path.getsize(written) / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="fork,startup,write")
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "mlopsc-scale-data"))
    args = parser.parse_args()
    only = args.only.split(",")
    Path(args.data).mkdir(parents=True, exist_ok=True)
    table = scale_bench.dataset(args.rows, Path(args.data)) if {"fork", "write"} & set(only) else None
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.runs}")
    if "fork" in only:
        fork(table, args.runs)
    if "startup" in only:
        startup(args.runs)
    if "write" in only:
        write(table, args.runs)


if __name__ == "__main__":
    main()
