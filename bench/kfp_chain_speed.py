"""For scale beside `mlopsc check`: kfp's own define + compile of an N-step chain of trivial
lightweight components, as one whole process (median wall and CPU time of --runs runs).

    .venv/bin/python bench/kfp_chain_speed.py [--steps 1000] [--runs 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_speed import median_seconds

CHAIN = """
import sys
from kfp import compiler, dsl

@dsl.component(base_image="python:3.11")
def step(x: int) -> int:
    return x + 1

@dsl.pipeline(name="chain")
def chain():
    task = step(x=0)
    for _ in range(int(sys.argv[1]) - 1):
        task = step(x=task.output)

compiler.Compiler().compile(chain, sys.argv[2])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # a file, not `python -c`: kfp reads each component's source with inspect.getsource
        module, out = Path(tmp) / "chain.py", str(Path(tmp) / "chain.yaml")
        module.write_text(CHAIN, encoding="utf-8")
        subprocess.run([sys.executable, str(module), "2", out], check=True)   # fail loudly without kfp
        wall, cpu = median_seconds([sys.executable, str(module), str(args.steps), out], args.runs)
    print(f"kfp define + compile, {args.steps}-step chain: {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"(median of {args.runs})")


if __name__ == "__main__":
    main()
