"""The expression evaluator against DataFrame.query, side by side on one seeded table.

    .venv/bin/python bench/expression_speed.py [--rows 1000000] [--runs 7]

For each filter: the median wall time of `rows_where` + the row selection (what a source's filter
costs in mlopsc) and of `DataFrame.query` for the pandas spelling of the same filter (the baseline,
run here only, never in the project), interleaved so that machine noise hits both alike, and their
ratio. Both must keep the same rows; the bench stops if they do not. Target: ratio <= 1.2.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import pandas as pd
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression
from mlopsc.runtime.expressions import rows_where

FILTERS = [   # (mlopsc, pandas query)
    ("amount > 100", "amount > 100"),
    ("amount > 100 and score < 0.5", "amount > 100 and score < 0.5"),
    ("0.1 < score <= 0.9 & segment in ['a', 'c', 'e']", "0.1 < score <= 0.9 & segment in ['a', 'c', 'e']"),
    ("notna(amount) and (amount * 2 + 1 > score * 100 or flag)",
     "amount.notna() and (amount * 2 + 1 > score * 100 or flag)"),
    ("not (segment == 'b') | amount % 7 == 0", "not (segment == 'b') | amount % 7 == 0"),
]


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    amount = rng.gamma(2.0, 60.0, rows)
    amount[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame({
        "amount": amount,
        "score": rng.random(rows),
        "segment": pd.Categorical(rng.choice(list("abcdefgh"), rows)),
        "flag": rng.random(rows) < 0.3,
    })


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    df = table(args.rows)
    step = ir.Source(name="bench", format="parquet", path="x.parquet")
    try:
        import numexpr
        engine = f"numexpr {numexpr.__version__}"
    except ImportError:
        engine = "python engine (numexpr not installed)"
    print(f"{args.rows:,} rows, {args.runs} runs each, median; pandas {pd.__version__}, query: {engine}; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| filter | rows kept | mlopsc (ms) | DataFrame.query (ms) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for ours, theirs in FILTERS:
        built = expression(ours)
        mine = df[rows_where(built, df, {}, step)]
        reference = df.query(theirs)
        if not mine.index.equals(reference.index):
            raise SystemExit(f"different rows for {ours!r}")
        a, b = [], []
        for _ in range(args.runs):
            a.append(timed(lambda built=built: df[rows_where(built, df, {}, step)]))
            b.append(timed(lambda theirs=theirs: df.query(theirs)))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"| `{ours}` | {len(mine):,} | {ma * 1000:.1f} | {mb * 1000:.1f} | {ma / mb:.2f} |")


if __name__ == "__main__":
    main()
