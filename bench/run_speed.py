"""Speed of the local runner, measured side by side in one session (medians of --runs rounds).

    .venv/bin/python bench/run_speed.py [--runs 3] [--only first,parallel,long]

1. first:    `mlopsc run specs/penguins.mlops` on a fresh state folder vs bench/baseline_penguins.py
             (the same work written by hand) on a fresh MLflow store; whole processes, alternated
             in each round so that machine load hits both alike. Target ratio <= 1.2.
2. cached:   an unchanged re-run after each first run, against that first run (measured with
             `first`). Target <= 10 %.
3. parallel: bench/parallel_branches.mlops (two independent ~2 s trainings) with --jobs 1 and
             --jobs 2, the source cached and the rest forced (`--from penguins_split
             --no-cache`), alternated. Target ratio <= 0.6. Also the branches alone: from the
             first branch's start to the last one's end, as the run record has them (when
             their workers began them). And the same with 4x the trees (~8 s branches), which
             shows how the whole-run ratio follows Amdahl's law as the branches grow.

Wall time and CPU time (of the process and all it waited for: workers included) are both shown.

Prints a Markdown table for docs/benchmarks.md, with the machine's load average, because on a
shared 2-core machine the absolute times say more about the neighbours than about the code.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlopsc.runtime.state_folder import STATE_FOLDERS, state_folder

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MLOPSC = str(Path(sys.executable).parent / "mlopsc")


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and every descendant it waited for)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def project(root: Path) -> Path:
    """A throw-away copy of specs/ and bench/parallel_branches.mlops (runs never touch the repo)."""
    shutil.copytree(REPO / "specs", root / "specs", ignore=shutil.ignore_patterns(*STATE_FOLDERS, "out"))
    (root / "bench").mkdir()
    shutil.copy(REPO / "bench" / "parallel_branches.mlops", root / "bench")
    return root


def first_and_cached(runs: int, work: Path) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {"mlopsc": [], "baseline": [], "cached": []}
    for i in range(runs):
        root = project(work / f"first-{i}")
        times["baseline"].append(timed([PYTHON, str(REPO / "bench" / "baseline_penguins.py"),
                                        "--data", "specs/data/penguins.csv", "--store", "baseline"], root))
        times["mlopsc"].append(timed([MLOPSC, "run", "specs/penguins.mlops"], root))
        times["cached"].append(timed([MLOPSC, "run", "specs/penguins.mlops"], root))
    return times


def parallel(runs: int, work: Path, trees: int = 250) -> dict[str, list[tuple[float, float]]]:
    root = project(work / f"parallel-{trees}")
    spec = "bench/parallel_branches.mlops"
    path = root / spec
    path.write_text(path.read_text().replace("n_estimators = 250", f"n_estimators = {trees}"))
    timed([MLOPSC, "run", spec], root)          # cache the source
    times: dict[str, list[tuple[float, float]]] = {"jobs1": [], "jobs2": [], "branches1": [], "branches2": []}
    for _ in range(runs):
        for jobs in (1, 2):
            times[f"jobs{jobs}"].append(timed([MLOPSC, "run", spec, "--from", "penguins_split", "--no-cache",
                                               "--jobs", str(jobs)], root))
            # The branches alone, from the run record: first start to last end of the two trainings.
            runs = state_folder(root / "bench") / "runs"
            records = sorted(runs.glob("*.json"), key=lambda p: p.stat().st_mtime)
            steps = json.loads(records[-1].read_text())["steps"]
            branches = [steps["forest_a"], steps["forest_b"]]
            span = max(b["ended_at"] for b in branches) - min(b["started_at"] for b in branches)
            times[f"branches{jobs}"].append((span, 0.0))
    return times


def row(name: str, target: str, a: list[tuple[float, float]], b: list[tuple[float, float]]) -> str:
    """Median wall and CPU seconds of a and b, and their ratios."""
    med = statistics.median
    wall_a, wall_b = med(t[0] for t in a), med(t[0] for t in b)
    cpu_a, cpu_b = med(t[1] for t in a), med(t[1] for t in b)
    return (f"| {name} | {wall_a:.2f} / {wall_b:.2f} | {wall_a / wall_b:.2f} | {cpu_a:.2f} / {cpu_b:.2f} "
            f"| {cpu_a / cpu_b:.2f} | {target} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="first,parallel,long")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlopsc-bench-") as tmp:
        work = Path(tmp)
        if "first" in args.only.split(","):
            t = first_and_cached(args.runs, work)
            rows.append(row("penguins first run: `mlopsc run` / hand-written baseline", "<= 1.2",
                            t["mlopsc"], t["baseline"]))
            rows.append(row("penguins unchanged re-run / first run", "<= 0.10", t["cached"], t["mlopsc"]))
        for trees, name, only in ((250, "two ~2 s branches", "parallel"), (1000, "two ~8 s branches", "long")):
            if only not in args.only.split(","):
                continue
            t = parallel(args.runs, work, trees)
            # CPU is not the point here (both do the same work); the wall ratio is.
            rows.append(row(f"{name}, whole run: `--jobs 2` / `--jobs 1`", "<= 0.6 (wall)",
                            t["jobs2"], t["jobs1"]))
            med = statistics.median
            b1, b2 = med(x[0] for x in t["branches1"]), med(x[0] for x in t["branches2"])
            rows.append(f"| {name} alone (run record): `--jobs 2` / `--jobs 1` | {b2:.2f} / {b1:.2f} "
                        f"| {b2 / b1:.2f} | | | |")
    load = os.getloadavg()
    print(f"median of {args.runs} rounds; load average at the end {load[0]:.1f} / {load[1]:.1f} "
          f"on {os.cpu_count()} cores\n")
    print("| measure | wall s | wall ratio | CPU s | CPU ratio | target |\n| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
