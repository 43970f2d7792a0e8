"""Where a step's time and memory go: the steps of a spec run one after the other in this one
process through `mlopsc.runtime.execute` (what a local worker does), each with its wall time, CPU
time (every thread of the process) and the process's peak RSS while it ran, and for the steps
named with --profile, the functions that took the most time (cProfile, cumulative).

For a step that writes Datasets, "hash+write" is what writing them costs: each is read back and
written again with `artifacts.write_parquet` (content hash and Parquet file, as the step does
it), and its wall and CPU time are shown beside the step's, with their shares of the step's.
With --write-cost N, such a step also runs N more times as it is and N times with a writer that
hashes and writes nothing, alternately: the difference of the median wall times is what hashing
and writing add to the step (the file is written by a thread while the step logs to MLflow).

    .venv/bin/python bench/scale_profile.py DIR [--spec scale.mlops] [--profile events,by_time] [--top 20]
        [--write-cost 3]

DIR holds the spec and its data (bench/scale_bench.py's layout: scale.mlops, data/events.parquet,
data/events_shifted.parquet); artifacts and an MLflow store go to DIR/profile/. Every step runs,
monitors included, upstream first. The figures of bench/scale_bench.py come from whole runs;
these tell which part of a step they are made of.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import graphlib
import io
import pstats
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> int:
    with open("/proc/self/status") as fh:
        return int(fh.read().split("VmHWM:")[1].split()[0]) // 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")     # the kernel resets VmHWM to the current RSS


def rewrite(uri: str, scratch: Path) -> tuple[float, float]:
    """Wall and CPU seconds that hashing and writing the Dataset at `uri` take (read back first,
    untimed)."""
    from mlopsc.runtime import artifacts

    frame = artifacts.read_parquet(uri)
    wall, cpu = time.perf_counter(), cpu_seconds()
    artifacts.write_parquet(frame, str(scratch))
    return time.perf_counter() - wall, cpu_seconds() - cpu


@contextlib.contextmanager
def no_write(df, uri):
    yield "0" * 64


def write_cost(step, inputs: dict, ctx, scratch: Path, rounds: int) -> tuple[float, float]:
    """(median wall of the step minus that of the step with a writer that does nothing, median
    wall of the step), over `rounds` alternated runs of each."""
    from unittest import mock

    from mlopsc.runtime import artifacts, execute

    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(2 * rounds):
        writes = i % 2 == 0
        outputs = artifacts.output_uris(str(scratch / str(i)), step)
        with mock.patch.object(artifacts, "parquet_written", artifacts.parquet_written if writes else no_write):
            start = time.perf_counter()
            execute(step, inputs, outputs, ctx)
            times[writes].append(time.perf_counter() - start)
        shutil.rmtree(scratch / str(i), ignore_errors=True)
    return statistics.median(times[True]) - statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--spec", default="scale.mlops")
    parser.add_argument("--profile", default="", help="comma-separated step names")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--write-cost", type=int, default=0, metavar="N")
    args = parser.parse_args()

    from mlopsc.compiler import load
    from mlopsc.runtime import RunContext, artifacts, execute, tracking

    root = Path(args.dir).resolve()
    work = root / "profile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    pipeline = load(str(root / args.spec)).pipeline
    steps = {s.name: s for s in pipeline.steps}
    # Monitors last: one that watches a deployed model scores the version the deploy registered.
    training = {s.name for s in pipeline.steps if s.kind != "monitor"}
    order = graphlib.TopologicalSorter({s.name: {r.step for _, r in s.refs()} | (training if s.kind == "monitor" else set())
                                        for s in pipeline.steps}).static_order()
    ctx = RunContext(pipeline=pipeline.name, run_id="profile", spec_path=str(root / args.spec), spec_hash="profile",
                     tracking_uri=f"sqlite:///{work / 'mlflow.db'}", artifact_root=str(work / "artifacts"))
    ctx.parent_run_id = tracking.start_pipeline_run(ctx)
    profiled = set(filter(None, args.profile.split(",")))
    results: dict[str, dict] = {}
    print(f"{'step':16s} {'kind':9s} {'wall s':>7s} {'CPU s':>7s} {'peak RSS MiB':>12s}   hash+write: wall s (share)"
          "  CPU s (share)")
    for name in order:
        step = steps[name]
        inputs = {f: results[r.step]["outputs"][r.port]["uri"] for f, r in step.inputs().items()}
        outputs = artifacts.output_uris(str(work / "artifacts" / name), step)
        profiler = cProfile.Profile() if name in profiled else None
        reset_peak()
        wall, cpu = time.perf_counter(), cpu_seconds()
        if profiler:
            profiler.enable()
        results[name] = execute(step, inputs, outputs, ctx)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        peak = peak_rss_mib()
        datasets = [out["uri"] for out in results[name]["outputs"].values() if out["type"] == "Dataset"]
        costs = [rewrite(uri, work / "rewrite.parquet") for uri in datasets]
        w, c = sum(x[0] for x in costs), sum(x[1] for x in costs)
        share = f"   {w:6.2f} ({w / wall:4.0%})  {c:6.2f} ({c / cpu:4.0%})" if datasets else ""
        print(f"{name:16s} {step.kind:9s} {wall:7.2f} {cpu:7.2f} {peak:12d} {share}", flush=True)
        if datasets and args.write_cost:
            added, median = write_cost(step, inputs, ctx, work / "again", args.write_cost)
            print(f"{'':16s} hashing and writing add {added:.2f} s to the step's median {median:.2f} s "
                  f"({added / median:.0%})", flush=True)
        if profiler:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(args.top)
            print(text.getvalue(), file=sys.stderr)
    tracking.end_pipeline_run(ctx, "ok")


if __name__ == "__main__":
    main()
