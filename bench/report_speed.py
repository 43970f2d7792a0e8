"""Speed of the HTML report (docs/reports.md), measured side by side in one session.

    .venv/bin/python bench/report_speed.py [--runs 5]

1. render: the report of a penguins first run (its record and artifacts), written
   - in a warm process (jinja2, matplotlib, pandas, pyarrow and scikit-learn's metrics imported, as
     the run's worker has them) with no figure cached: what a first run pays at its end. Target <= 1 s;
   - the same with every figure cached: what a cached re-run pays;
   - by `mlopsc report RUN_ID` as a new process with no figure cached, imports included.
2. first run: `mlopsc run specs/penguins.mlops` on a fresh state folder with the report, and with
   it switched off (the runner's report call replaced by a no-op and its modules not preloaded, in
   the wrapper process that starts the run), alternated in each round so that machine load hits
   both alike. Target: at most 5 % more wall time. Then an unchanged re-run of each (the report
   of a fully cached run is laid out by the runner process itself).

Wall and CPU time (the process and what it waited for) are shown; prints a Markdown table for
docs/benchmarks.md with the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_speed import MLOPSC, PYTHON, project, timed  # bench/ is not a package

# Starts `mlopsc run` in this interpreter; with "off", the runner writes no report.
RUN = """
import sys
if sys.argv[1] == "off":
    import mlopsc.backends.local.runner as runner
    runner.write_run_report = lambda *args: (None, None)
    runner.REPORT_MODULES = ()
from mlopsc.backends.cli import main
sys.argv = ["mlopsc", "run", "specs/penguins.mlops"]
main()
"""


def median(values: list[float]) -> float:
    return statistics.median(values)


def render_times(runs: int, root: Path) -> dict[str, list[tuple[float, float]]]:
    from mlopsc.runtime.report import write_report

    for module in ("jinja2", "matplotlib.figure", "matplotlib.backends.backend_svg", "pandas", "pyarrow.parquet",
                   "sklearn.metrics"):
        __import__(module)
    record = json.loads(min((root / "specs" / ".mlopsc" / "runs").glob("*.json")).read_text())   # the first run
    times: dict[str, list[tuple[float, float]]] = {"warm": [], "cached": [], "process": []}
    for i in range(runs):
        cache = root / f"figures-{i}"
        for label in ("warm", "cached"):          # the second pass finds every figure cached
            start, cpu = time.perf_counter(), time.process_time()
            write_report(record, root / f"report-{i}" / "report.html", cache)
            times[label].append((time.perf_counter() - start, time.process_time() - cpu))
        shutil.rmtree(root / "specs" / ".mlopsc" / "reports" / "figures", ignore_errors=True)
        times["process"].append(timed([MLOPSC, "report", record["run_id"], "--spec", "specs/penguins.mlops"], root))
    return times


def first_runs(runs: int, work: Path) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {"on": [], "off": [], "rerun on": [], "rerun off": []}
    for i in range(runs):
        for side in ("on", "off") if i % 2 == 0 else ("off", "on"):
            root = project(work / f"first-{side}-{i}")
            times[side].append(timed([PYTHON, "-c", RUN, side], root))
            times[f"rerun {side}"].append(timed([PYTHON, "-c", RUN, side], root))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlopsc-report-bench-") as tmp:
        work = Path(tmp)
        first = first_runs(args.runs, work)
        rendered = render_times(args.runs, work / "first-on-0")
    load = os.getloadavg()
    print(f"Median of {args.runs} rounds, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")
    print("| measure | wall s | CPU s |\n| --- | ---: | ---: |")
    for label, key in (("render, warm process, no figure cached", "warm"),
                       ("render, warm process, every figure cached", "cached"),
                       ("`mlopsc report RUN_ID`, new process, no figure cached", "process")):
        print(f"| {label} | {median([w for w, _ in rendered[key]]):.3f} | {median([c for _, c in rendered[key]]):.3f} |")
    for label in ("", "rerun "):
        on, off = ([median([w for w, _ in first[label + side]]), median([c for _, c in first[label + side]])]
                   for side in ("on", "off"))
        what = "unchanged re-run" if label else "first run"
        print(f"| penguins {what}, report off | {off[0]:.2f} | {off[1]:.2f} |")
        print(f"| penguins {what}, report on | {on[0]:.2f} | {on[1]:.2f} |")
        print(f"| {what}: report on / off | {on[0] / off[0]:.3f} | {on[1] / off[1]:.3f} |")


if __name__ == "__main__":
    main()
