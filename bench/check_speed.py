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


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        if args.profile:
            profile(Path(tmp), args.profile)

    base = rows[0][2]
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, median of {args.runs} runs, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| command | median (s) | vs `python -c pass` | per step (ms, above import) |")
    print("| --- | ---: | ---: | ---: |")
    imports = rows[1][2]
    for label, n, seconds in rows:
        per_step = f"{(seconds - imports) / n * 1000:.2f}" if n else ""
        print(f"| {label} | {seconds:.3f} | {seconds / base:.1f}x | {per_step} |")


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
