"""Time the work of the check, monitor (drift) and score stages on a million rows, before and after.

    nice -n 10 .venv/bin/python bench/stage_speed.py [--rows 1000000] [--runs 5] [--before REV]
                                                     [--stages check drift score]

The table is bench/gen_data.py's (20 columns: a timestamp, an amount, 14 floats with some missing
values, 5-, 12- and 200-level text columns, a 0/1 label), generated in-process with its seed; the
drift's current sample is its shifted batch (a quarter of the rows). Each stage's own computation
is timed, without the Parquet reads and writes around it (bench/scale_bench.py times whole runs):
- check: `checks.validate` with the rules of bench/scale.mlops's check (15 column rules and an
  expectation, all holding), and with rules that fail on many rows (`check, failing`, on a tenth
  of the rows: the code before took minutes there);
- drift: the monitor's statistics (PSI, KS or chi-square, shares, means) of every column: the 19
  others, then the timestamp alone (one run: the code before took minutes there);
- score: the score stage's `deploy.predict` (classes and probabilities added to the table) of the
  spec's HistGradientBoostingClassifier, fitted by the runtime's Pipeline on 200,000 rows, next to
  that Pipeline's own `predict` on the same frame.

Each figure is the median of `--runs` runs (wall and CPU seconds; `predict` and `score` run in
turn, so that a change of load hits both alike). `--before REV` measures the
same script against the runtime of git revision REV (exported to a temporary folder that comes
first on PYTHONPATH), in the same run, so that the two columns are side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Rules that fail on most rows: one value check per kind, a uniqueness rule and an expectation.
FAILING_CHECK = """pipeline failing {
  source events { parquet = "events.parquet" }
  check failing_quality on events {
    column x01 between -1 and 1
    column channel in ["web", "app"]
    column region matches "^r0[0-5]$"
    column x10 not nullable
    column merchant unique
    expect "x02 < 1"
    on_fail = warn
  }
}
"""
STAGES = ["check", "check, failing (a tenth of the rows)", "drift, 19 columns", "drift, the timestamp (1 run)",
          "drift, all 20 columns", "predict (the model's own)", "score"]


def timed(work, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds (CPU: this process, every thread) of `work()`."""
    return interleaved({"work": work}, runs)["work"]


def interleaved(works: dict, runs: int) -> dict[str, tuple[float, float]]:
    """`timed` of several works, run in turn, so that a change of the machine's load hits each alike."""
    walls: dict[str, list[float]] = {name: [] for name in works}
    cpus: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(runs):
        for name, work in works.items():
            wall, cpu = time.perf_counter(), time.process_time()
            work()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in works}


def measure(rows: int, runs: int, stages: list[str]) -> dict[str, tuple[float, float]]:
    """The (wall, cpu) of each figure of `stages` in this process, with whichever mlopsc is importable."""
    import numpy as np
    from gen_data import block
    from mlopsc.compiler import loads
    from mlopsc.runtime import checks
    from mlopsc.runtime.monitor import drift

    table = block(rows, np.random.default_rng([0, 0, 0]), 0.0)
    shifted = block(max(rows // 4, 1), np.random.default_rng([0, 0, 100]), 1.0)
    spec = {s.name: s for s in loads((HERE / "scale.mlops").read_text(), "scale.mlops").pipeline.steps}
    failing = loads(FAILING_CHECK, "failing.mlops").pipeline.steps[1]
    figures = {}
    if "check" in stages:
        checks.validate(spec["events_quality"], table.head(1000), {})   # pandera's import, outside the timings
        figures["check"] = timed(lambda: checks.validate(spec["events_quality"], table, {}), runs)
        tenth = table.head(rows // 10)
        figures["check, failing (a tenth of the rows)"] = timed(lambda: checks.validate(failing, tenth, {}),
                                                                max(1, runs // 2))
    if "drift" in stages:
        for column in ("x01", "channel"):   # scipy.stats' import and first calls
            drift(table[column].head(20_000), shifted[column].head(20_000))
        others = [c for c in table.columns if c != "event_time"]
        figures["drift, 19 columns"] = timed(lambda: {c: drift(table[c], shifted[c]) for c in others}, runs)
        figures["drift, the timestamp (1 run)"] = timed(lambda: drift(table["event_time"], shifted["event_time"]), 1)
        figures["drift, all 20 columns"] = tuple(map(sum, zip(figures["drift, 19 columns"],
                                                              figures["drift, the timestamp (1 run)"])))
    if "score" in stages:
        figures |= score_figures(table, spec, runs)
    return figures


def score_figures(table, spec: dict, runs: int) -> dict[str, tuple[float, float]]:
    from mlopsc.runtime import deploy, preprocessing, train

    step = spec["label_model"]
    estimator = train.make_estimator(step, train.estimator_class(step))
    features = table[list(step.features)]
    model, fit_on, _, _ = preprocessing.build_pipeline(step, estimator, features.head(200_000))
    model.fit(fit_on, table["label"].head(200_000))
    deploy.predict(spec["score_all"], model, table.head(1000))
    return interleaved({"predict (the model's own)": lambda: model.predict(features),
                        "score": lambda: deploy.predict(spec["score_all"], model, table)}, runs)


def run_child(rows: int, runs: int, stages: list[str], code: Path | None) -> dict[str, list[float]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(code) if code else "",
                                                                    os.environ.get("PYTHONPATH", "")])))
    done = subprocess.run([sys.executable, __file__, "--child", "--rows", str(rows), "--runs", str(runs),
                           "--stages", *stages], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(rev: str, folder: Path) -> Path:
    """The tree of `rev` as an importable `mlopsc` package (compiler, runtime, backends)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "compiler", "runtime", "backends"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "mlopsc").mkdir()
    for name in ("compiler", "runtime", "backends"):
        (folder / "mlopsc" / name).symlink_to(folder / name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", help="a git revision to measure beside the working tree")
    parser.add_argument("--stages", nargs="+", choices=["check", "drift", "score"], default=["check", "drift", "score"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))   # gen_data, beside this file
    if args.child:
        print(json.dumps(measure(args.rows, args.runs, args.stages)))
        return
    with tempfile.TemporaryDirectory(prefix="mlopsc-stage-speed-") as tmp:
        columns = {"after": run_child(args.rows, args.runs, args.stages, None)}
        if args.before:
            code = export(args.before, Path(tmp))
            columns = {"before": run_child(args.rows, args.runs, args.stages, code), **columns}
    load = os.getloadavg()[0]
    print(f"{args.rows:,} rows, median of {args.runs} runs, load average {load:.1f}\n")
    print("| stage | " + " | ".join(f"{name} wall (s) | {name} CPU (s)" for name in columns) + " |")
    print("| --- |" + " ---: | ---: |" * len(columns))
    for stage in [s for s in STAGES if s in columns["after"]]:
        cells = " | ".join(f"{columns[name][stage][0]:.2f} | {columns[name][stage][1]:.2f}" for name in columns)
        print(f"| {stage} | {cells} |")
    for name, figures in columns.items() if "score" in args.stages else ():
        score, own = figures["score"], figures["predict (the model's own)"]
        print(f"\n{name}: score / predict = {score[0] / own[0]:.2f} (wall), {score[1] / own[1]:.2f} (CPU)")


if __name__ == "__main__":
    main()
