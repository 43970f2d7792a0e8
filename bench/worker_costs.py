"""What a local-runner worker pays before a step's own work, and what the zygote saves it.

    .venv/bin/python bench/worker_costs.py [--runs 5]

1. imports: each module the zygote imports for the penguins pipeline, in its order, timed in one
   fresh process (`preload.py`); the total is the serial part no worker can skip.
2. store:   opening the MLflow SQLite store (the first client call) in a process forked from one
   that has imported MLflow only, against one forked after the zygote's store modules
   (`preload.tracking_modules`) too.
3. save:    the first model save (`mlflow.sklearn.save_model`, what a train step does) in a
   fork made before and after `artifacts.fill_caches()`.

Medians of --runs forks; printed as Markdown tables for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def in_fork(work) -> float:
    """Seconds `work()` takes in a fresh fork of this process (so that its caches start cold)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        start = time.perf_counter()
        work()
        os.write(write, json.dumps(time.perf_counter() - start).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        seconds = json.loads(answer.read())
    os.waitpid(pid, 0)
    return seconds


def imports() -> list[tuple[str, float]]:
    """The zygote's import list for the penguins spec, timed in a fresh process, in order."""
    from mlopsc.backends.local.preload import tracking_modules, warm_modules
    from mlopsc.compiler.program import load_program

    program = load_program(str(REPO / "specs" / "penguins.mlops"))
    order = tracking_modules("sqlite:///x.db") + tuple(m for s in program.pipeline.steps for m in warm_modules(s))
    timed = []
    for name in dict.fromkeys(order):
        module, _, function = name.partition(":")
        start = time.perf_counter()
        imported = importlib.import_module(module)
        if function:
            getattr(imported, function)()
        timed.append((name, time.perf_counter() - start))
    return timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--imports-only", action="store_true", help="(internal) time the imports, print JSON")
    args = parser.parse_args()
    if args.imports_only:
        print(json.dumps(imports()))
        return
    import subprocess

    done = subprocess.run([sys.executable, __file__, "--imports-only"], capture_output=True, text=True, check=True)
    timed = json.loads(done.stdout)
    print("| zygote import (penguins, in order) | s |\n| --- | ---: |")
    for name, seconds in timed:
        if seconds >= 0.05:
            print(f"| `{name}` | {seconds:.2f} |")
    print(f"| all {len(timed)} (the smaller ones included) | {sum(s for _, s in timed):.2f} |\n")

    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    folder = Path(tempfile.mkdtemp(prefix="mlopsc-bench-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"

    def open_store() -> None:
        mlflow.MlflowClient(uri).get_experiment_by_name("Default")

    # Create the store's tables once, in a fork: this process must not open (or cache) the store,
    # as the zygote never does.
    in_fork(open_store)

    model = LogisticRegression().fit(np.random.default_rng(0).normal(size=(60, 3)), [0, 1, 2] * 20)

    def save() -> None:
        import mlflow.sklearn

        mlflow.sklearn.save_model(model, str(folder / f"model-{os.getpid()}"), serialization_format="skops",
                                  skops_trusted_types=[], pip_requirements=["scikit-learn"])

    from mlopsc.backends.local.preload import tracking_modules

    rows = [("open the MLflow store, store modules not imported", [in_fork(open_store) for _ in range(args.runs)])]
    for module in tracking_modules(uri):
        importlib.import_module(module)
    rows.append(("open the MLflow store, the zygote's store modules imported first",
                 [in_fork(open_store) for _ in range(args.runs)]))
    importlib.import_module("mlflow.sklearn")
    importlib.import_module("skops.io")
    rows.append(("first model save, package map cold", [in_fork(save) for _ in range(args.runs)]))
    from mlopsc.runtime import artifacts

    artifacts.fill_caches()
    rows.append(("first model save, after `fill_caches()`", [in_fork(save) for _ in range(args.runs)]))
    print(f"| in a fresh fork (median of {args.runs}) | s |\n| --- | ---: |")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times):.3f} |")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
