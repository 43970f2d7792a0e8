"""Time `mlopsc check` as a whole process on generated specs of 10, 100 and 1000 steps.

    .venv/bin/python bench/check_speed.py [--runs 7] [--sizes 10 100 1000]

Each command runs `--runs` times; the median wall time is reported beside two baselines: an empty
interpreter (`python -c pass`) and `import mlopsc.compiler`, so the part that is ours shows.
Prints a Markdown table (pasted into docs/benchmarks.md) and, with --profile N, the top functions
of an in-process check of an N-step spec.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/ is not a package: import the generator from beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import generate

RUN_CLI = "import sys; from mlopsc.backends.cli import main; sys.argv[0] = 'mlopsc'; main()"
# Where the time of one check goes, measured inside one fresh process (argv[1] is the spec).
STAGES = """
import sys, time
t0 = time.perf_counter()
import click, mlopsc.backends.cli
t1 = time.perf_counter()
from mlopsc.compiler import ir
t2 = time.perf_counter()
from mlopsc.compiler import parser, passes, program
t3 = time.perf_counter()
text = open(sys.argv[1]).read()
pipeline = parser.parse(text, sys.argv[1])
t4 = time.perf_counter()
program.compile_pipeline(pipeline, None, text)
t5 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
"""
STAGE_NAMES = ["import click + CLI", "import IR (pydantic models)", "import parser + passes",
               "parse to IR (lark + transformer)", "passes + Program"]


def median_seconds(command: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child. On a shared machine the
    CPU time is the steadier number: wall time also counts waiting for a core."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--profile", type=int, metavar="N", help="also profile checking an N-step spec")
    args = parser.parse_args()

    python = sys.executable
    rows = [("`python -c pass`", None, median_seconds([python, "-c", "pass"], args.runs)),
            ("`python -c 'import mlopsc.compiler'`", None,
             median_seconds([python, "-c", "import mlopsc.compiler"], args.runs))]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            spec = Path(tmp) / f"bench_{n}.mlops"
            spec.write_text(generate(n), encoding="utf-8")
            # warm lark's grammar cache once, as any second run of a user's would be
            subprocess.run([python, "-c", RUN_CLI, "check", str(spec)], check=True, capture_output=True)
            rows.append((f"`mlopsc check` {n} steps", n,
                         median_seconds([python, "-c", RUN_CLI, "check", str(spec)], args.runs)))
        stage_rows = []
        for n in args.sizes:
            spec = Path(tmp) / f"bench_{n}.mlops"
            samples = [subprocess.run([python, "-c", STAGES, str(spec)], check=True, capture_output=True,
                                      text=True).stdout.split() for _ in range(args.runs)]
            stage_rows.append((n, [statistics.median(float(s[i]) for s in samples) for i in range(len(STAGE_NAMES))]))
        if args.profile:
            profile(Path(tmp), args.profile)

    base_wall, base_cpu = rows[0][2]
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, median of {args.runs} runs, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| command | wall (s) | CPU (s) | wall vs `python -c pass` | CPU vs `python -c pass` |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, _, (wall, cpu) in rows:
        print(f"| {label} | {wall:.3f} | {cpu:.3f} | {wall / base_wall:.1f}x | {cpu / base_cpu:.1f}x |")
    print("\n| stage (s, median) | " + " | ".join(f"{n} steps" for n, _ in stage_rows) + " |")
    print("| --- |" + " ---: |" * len(stage_rows))
    for i, name in enumerate(STAGE_NAMES):
        print(f"| {name} | " + " | ".join(f"{times[i]:.3f}" for _, times in stage_rows) + " |")


def profile(folder: Path, n: int) -> None:
    import cProfile
    import pstats

    from mlopsc.compiler import load

    spec = folder / f"profile_{n}.mlops"
    spec.write_text(generate(n), encoding="utf-8")
    load(str(spec))                          # warm: grammar built, modules imported
    profiler = cProfile.Profile()
    profiler.runcall(load, str(spec))
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
