"""The scale bench: `mlopsc run` + `mlopsc monitor` of bench/scale.mlops against
bench/baseline_scale.py (the same work by hand, one process), side by side, at several sizes.

    .venv/bin/python bench/scale_bench.py [--rows 100000,1000000,5000000] [--runs 3]
        [--only mlopsc|baseline] [--threads N] [--data DIR] [--json results.json]

Per size, the table comes from bench/gen_data.py (generated into --data once, then reused). Each
round runs both sides on fresh folders, alternating which goes first, so that the machine's load
falls on both alike; mlopsc also re-runs unchanged (every step cached) after its first run.

Measured per whole command:
- wall time;
- CPU time: user + system of the command and of every process it waited for (the local runner's
  zygote reaps its workers, so their CPU counts), from getrusage(RUSAGE_CHILDREN);
- peak memory of the process tree (the command, the zygote, the workers), sampled every 50 ms
  from /proc: the tree is found through /proc/PID/task/TID/children, and each process's `Rss` and
  `Pss` read from /proc/PID/smaps_rollup. The peak PSS sum is the memory the tree holds: pages the
  workers share with the zygote that forked them (the imported libraries) count once. The peak
  RSS sum counts them once per process and is shown beside it.
Per stage: the steps' start and end from mlopsc's run records (the baseline writes its own with
--stages), each with its duration, the tree's CPU time over it (from /proc/PID/stat: user +
system of every live process of the tree and of the children each has reaped) and its peak PSS; "start-up" is from the
command's start to its first step (compiling, imports, the MLflow store), "finish" from its last
step to its exit (lineage, the run's report).

Prints Markdown tables (medians over the rounds) for docs/benchmarks.md, with the load average.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MLOPSC = str(Path(sys.executable).parent / "mlopsc")
STAGE_OF_STEP = {"events": "source", "events_quality": "check", "by_time": "split", "label_model": "train",
                 "label_eval": "evaluate", "release": "gate", "label_service": "deploy", "score_all": "score",
                 "shifted": "monitor", "label_drift": "monitor"}
STAGES = ["start-up", "source", "check", "split", "train", "evaluate", "gate", "deploy", "score", "monitor", "finish"]
MIB = 1 << 20


# ---------------------------------------------------------------- memory of a process tree


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue          # ended meanwhile
    return found


def memory(pid: int) -> tuple[int, int]:
    """(Rss, Pss) of one process, in bytes; zeros once it has ended."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


TICKS = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> float:
    """CPU seconds of a process (all its threads) and of its children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / TICKS      # utime, stime, cutime, cstime


class Sampler(threading.Thread):
    """Samples (time, RSS sum, PSS sum, CPU seconds) of a process tree until stopped. The CPU of the
    tree so far is that of its live processes, each with the children it has reaped.

    The tree and its CPU are read every `interval` (cheap: /proc/PID/stat), its memory every
    `memory_every` only: the kernel walks a process's page tables to answer smaps_rollup, which for
    a tree of gigabytes costs milliseconds per process. Read every 50 ms it took a third of a core
    on these 2 cores from the command being measured. `cpu_used` is the sampler's own CPU time,
    reported beside the figures."""

    def __init__(self, pid: int, interval: float = 0.05, memory_every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.memory_every, self.samples = pid, interval, memory_every, []
        self.stopped = threading.Event()
        self.cpu_used = 0.0

    def run(self) -> None:
        sizes, read_at = (0, 0), -math.inf
        while not self.stopped.is_set():
            now = time.time()
            pids = tree(self.pid)
            if now - read_at >= self.memory_every:
                read_at, each = now, [memory(p) for p in pids]
                sizes = (sum(s[0] for s in each), sum(s[1] for s in each))
            self.samples.append((now, *sizes, sum(cpu(p) for p in pids)))
            self.stopped.wait(self.interval)
        self.cpu_used = time.thread_time()


MEMORY_EVERY = [0.5]      # --memory-every


THREADS: dict[str, str] = {}     # OMP_NUM_THREADS etc. for both sides (--threads)


def measure(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> dict:
    """Run `cmd`; its wall and CPU seconds, peak RSS and PSS of its tree, and the samples."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONWARNINGS"] = "ignore"
    env.update(THREADS)
    env.update(extra_env or {})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    with open(cwd / "bench.log", "a") as log:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(process.pid, memory_every=MEMORY_EVERY[0])
        sampler.start()
        code = process.wait()
    end = time.time()
    sampler.stopped.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code}; see {cwd / 'bench.log'}")
    samples = sampler.samples or [(start, 0, 0, 0.0)]
    return {"wall": end - start, "start": start, "end": end,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "rss": max(s[1] for s in samples), "pss": max(s[2] for s in samples), "samples": samples,
            "sampler_cpu": sampler.cpu_used}


def peak_between(samples: list, start: float, end: float) -> int:
    """The tree's peak PSS over [start, end], the sample just before it included (a stage
    shorter than the sampling interval has no sample of its own)."""
    before = [s for s in samples if s[0] <= start][-1:]
    return max(s[2] for s in before + [s for s in samples if start <= s[0] <= end] or samples[:1])


def cpu_between(samples: list, start: float, end: float) -> float:
    """The tree's CPU seconds from the last sample at or before `start` to the first at or after
    `end` (a 50 ms sampling: stages shorter than that get the CPU of their neighbourhood)."""
    before = [s[3] for s in samples if s[0] <= start] or [samples[0][3]]
    after = [s[3] for s in samples if s[0] >= end] or [samples[-1][3]]
    return max(0.0, after[0] - before[-1])


# ---------------------------------------------------------------- the two sides


def dataset(rows: int, data: Path) -> Path:
    table = data / f"scale_{rows}.parquet"
    if not table.exists():
        subprocess.run(["nice", "-n", "10", PYTHON, str(REPO / "bench" / "gen_data.py"), str(rows),
                        "--out", str(data), "--no-csv"], check=True)
    return table


def project(root: Path, table: Path) -> Path:
    """A fresh folder with the spec and the table linked as data/events[_shifted].parquet."""
    (root / "data").mkdir(parents=True)
    shutil.copy(REPO / "bench" / "scale.mlops", root)
    os.symlink(table, root / "data" / "events.parquet")
    os.symlink(table.with_name(table.stem + "_shifted.parquet"), root / "data" / "events_shifted.parquet")
    return root


def run_mlopsc(root: Path, *options: str) -> dict:
    """`mlopsc run` (with `options`), `mlopsc monitor`, then an unchanged re-run."""
    run = measure([MLOPSC, "run", "scale.mlops", *options], root)
    monitor = measure([MLOPSC, "monitor", "scale.mlops"], root)
    records = sorted((root / ".mlopsc" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    stages = {}
    for measured, record in ((run, records[0]), (monitor, records[1])):
        steps = json.loads(record.read_text())["steps"]
        first = min(s["started_at"] for s in steps.values() if s["started_at"])
        last = max(s["ended_at"] for s in steps.values() if s["ended_at"])
        stages.setdefault("start-up", []).append((measured["start"], first, measured["samples"]))
        stages.setdefault("finish", []).append((last, measured["end"], measured["samples"]))
        for name, step in steps.items():
            if step["started_at"]:
                stages.setdefault(STAGE_OF_STEP[name], []).append(
                    (step["started_at"], step["ended_at"], measured["samples"]))
    rerun = measure([MLOPSC, "run", "scale.mlops"], root)
    whole = {"wall": run["wall"] + monitor["wall"], "cpu": run["cpu"] + monitor["cpu"],
             "sampler_cpu": run["sampler_cpu"] + monitor["sampler_cpu"],
             "rss": max(run["rss"], monitor["rss"]), "pss": max(run["pss"], monitor["pss"])}
    return {**whole, "rerun": rerun["wall"], "rerun_cpu": rerun["cpu"], "stages": per_stage(stages)}


def run_baseline(root: Path) -> dict:
    done = measure([PYTHON, str(REPO / "bench" / "baseline_scale.py"), "--data", "data/events.parquet",
                    "--shifted", "data/events_shifted.parquet", "--store", "baseline", "--stages", "stages.json"],
                   root)
    stages = {}
    for name, start, end in json.loads((root / "stages.json").read_text()):
        key = "start-up" if name in ("imports", "mlflow setup") else name
        stages.setdefault(key, []).append((start, end, done["samples"]))
    stages["start-up"][0] = (done["start"], stages["start-up"][0][1], done["samples"])
    stages["finish"] = [(max(end for windows in stages.values() for _, end, _ in windows), done["end"], done["samples"])]
    return {**{k: done[k] for k in ("wall", "cpu", "rss", "pss", "sampler_cpu")}, "stages": per_stage(stages)}


def per_stage(stages: dict) -> dict:
    """{stage: (seconds, CPU seconds, peak PSS)}, over a stage's windows (a stage may have several)."""
    return {name: (sum(end - start for start, end, _ in windows),
                   sum(cpu_between(samples, start, end) for start, end, samples in windows),
                   max(peak_between(samples, start, end) for start, end, samples in windows))
            for name, windows in stages.items()}


# ---------------------------------------------------------------- report


def med(values) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def report(results: dict[int, dict[str, list[dict]]], runs: int) -> str:
    load = os.getloadavg()
    threads = f"; OMP_NUM_THREADS={THREADS['OMP_NUM_THREADS']}" if THREADS else ""
    sampler = ", ".join(f"{side} {med(r['sampler_cpu'] / r['wall'] for r in rounds):.1%}"
                        for sides in results.values() for side, rounds in sides.items() if rounds)
    out = [(f"median of {runs} round(s); load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
            f"on {os.cpu_count()} cores{threads}; memory read every {MEMORY_EVERY[0]} s; the sampler's own CPU, "
            f"share of a core: {sampler}"), "",
           ("| rows | wall s mlopsc / baseline | ratio | CPU s mlopsc / baseline | ratio "
            "| peak PSS MiB mlopsc / baseline | ratio | peak RSS sum MiB mlopsc / baseline | re-run s (share of first) |"),
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for rows, sides in results.items():
        m, b = sides.get("mlopsc", []), sides.get("baseline", [])
        cells = []
        for key, scale in (("wall", 1), ("cpu", 1), ("pss", MIB)):
            mv, bv = med(r[key] for r in m) / scale, med(r[key] for r in b) / scale
            cells += [f"{mv:.1f} / {bv:.1f}", f"{mv / bv:.2f}" if b and m else ""]
        rerun = med(r["rerun"] for r in m)
        cells += [f"{med(r['rss'] for r in m) / MIB:.0f} / {med(r['rss'] for r in b) / MIB:.0f}",
                  f"{rerun:.2f} ({rerun / med(r['wall'] for r in m):.1%})" if m else ""]
        out.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    for rows, sides in results.items():
        out += ["", f"Per stage at {rows:,} rows (wall and CPU seconds, and the tree's peak PSS in MiB while it ran):",
                "", "| stage | mlopsc s | mlopsc CPU s | mlopsc MiB | baseline s | baseline CPU s | baseline MiB |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for stage in STAGES:
            cells = []
            for side in ("mlopsc", "baseline"):
                found = [r["stages"][stage] for r in sides.get(side, []) if stage in r["stages"]]
                cells += ([f"{med(f[0] for f in found):.2f}", f"{med(f[1] for f in found):.2f}",
                           f"{med(f[2] for f in found) / MIB:.0f}"] if found else ["", "", ""])
            out.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000,5000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("mlopsc", "baseline"))
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "mlopsc-scale-data"))
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--threads", type=int, help="OpenMP/BLAS threads of both sides (OMP_NUM_THREADS): on "
                        "a loaded machine, OpenMP's spin-waiting threads make the fits' times erratic")
    parser.add_argument("--memory-every", type=float, default=0.5, metavar="SECONDS",
                        help="read the tree's memory (smaps_rollup) this often; its CPU every 50 ms")
    args = parser.parse_args()
    MEMORY_EVERY[0] = args.memory_every
    if args.threads:
        THREADS.update({name: str(args.threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS")})
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, list[dict]]] = {}
    sides = [args.only] if args.only else ["mlopsc", "baseline"]
    with tempfile.TemporaryDirectory(prefix="mlopsc-scale-") as tmp:
        for rows in (int(r) for r in args.rows.split(",")):
            table = dataset(rows, data)
            results[rows] = {side: [] for side in sides}
            for i in range(args.runs):
                for side in (sides if i % 2 == 0 else sides[::-1]):
                    root = project(Path(tmp) / f"{side}-{rows}-{i}", table)
                    results[rows][side].append((run_mlopsc if side == "mlopsc" else run_baseline)(root))
                    shutil.rmtree(root)
                    print(f"{rows} rows, {side}, round {i + 1}: {results[rows][side][-1]['wall']:.1f} s",
                          file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(report(results, args.runs))


if __name__ == "__main__":
    main()
