"""A seeded synthetic table for the scale bench (bench/scale_bench.py, bench/scale.mlops).

    python bench/gen_data.py ROWS [--out /tmp/mlopsc-scale-data] [--seed 0] [--no-csv]

Writes, for ROWS rows:
- `scale_ROWS.parquet` and `scale_ROWS.csv`: the table (20 columns);
- `scale_ROWS_shifted.parquet`: a second batch of ROWS // 4 rows, later in time, whose
  distributions have moved (for the monitor's drift statistics).

Columns: `event_time` (a timestamp over 2025, in no particular order, so a time split has to sort),
`amount` (log-normal, positive), `x01`..`x14` (floats; x01-x04 carry the signal, x10-x14 have
1-5% missing values), `channel` (5 levels), `region` (12 levels), `merchant` (200 levels,
Zipf-like), and `label` (0/1, about 20% ones): a logistic function of some of the numbers, the
amount, the channel and the merchant, plus noise, so a model has something real to learn.

Generated and written in blocks of a million rows (one Parquet row group each), so memory stays
flat whatever ROWS is; block k's values come from the generator seeded (seed, k), hence the same
ROWS and seed always give the same bytes.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

BLOCK = 1_000_000
CHANNELS = ["web", "app", "store", "phone", "partner"]
REGIONS = [f"r{i:02d}" for i in range(12)]
MERCHANTS = [f"m{i:03d}" for i in range(200)]
START = "2025-01-01"
YEAR_SECONDS = 365 * 24 * 3600


def block(rows: int, rng, shift: float):
    """A frame of `rows` rows; `shift` > 0 moves the distributions and the time (the later batch)."""
    import numpy as np
    import pandas as pd

    seconds = rng.integers(0, YEAR_SECONDS, rows) + int(shift * YEAR_SECONDS)
    data = {"event_time": pd.Timestamp(START) + pd.to_timedelta(seconds, unit="s"),
            "amount": np.round(rng.lognormal(3.5 + 0.3 * shift, 1.0, rows), 2)}
    x = rng.normal(0.0, 1.0, (rows, 14))
    x[:, :3] += shift * np.array([0.5, -0.3, 0.2])           # the shifted batch drifts here
    for j in range(14):
        column = x[:, j]
        if j >= 9:    # x10..x14: a few missing values
            column[rng.random(rows) < 0.01 * (j - 8)] = np.nan
        data[f"x{j + 1:02d}"] = column
    channel_p = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    if shift:
        channel_p = np.array([0.25, 0.45, 0.1, 0.1, 0.1])
    channel = rng.choice(len(CHANNELS), rows, p=channel_p)
    region = rng.integers(0, len(REGIONS), rows)
    merchant_p = 1.0 / np.arange(1, len(MERCHANTS) + 1) ** 0.8
    merchant = rng.choice(len(MERCHANTS), rows, p=merchant_p / merchant_p.sum())
    data["channel"] = np.array(CHANNELS, dtype=object)[channel]
    data["region"] = np.array(REGIONS, dtype=object)[region]
    data["merchant"] = np.array(MERCHANTS, dtype=object)[merchant]
    merchant_effect = np.sin(np.arange(len(MERCHANTS)) * 1.7) * 0.8
    logit = (-2.0 + 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
             + 0.4 * (np.log(data["amount"]) - 3.5) + np.array([0.0, 0.3, -0.4, 0.6, 0.9])[channel]
             + merchant_effect[merchant] + rng.logistic(0.0, 0.5, rows) * 0.5)
    data["label"] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    return pd.DataFrame(data)


def write(path: Path, rows: int, seed: int, shift: float, csv: Path | None) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp, csv_tmp = Path(f"{path}.tmp"), Path(f"{csv}.tmp")
    writer = None
    try:
        for k, start in enumerate(range(0, rows, BLOCK)):
            frame = block(min(BLOCK, rows - start), np.random.default_rng([seed, k, int(shift * 100)]), shift)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema, compression="snappy")
            writer.write_table(table)
            if csv is not None:
                frame.to_csv(csv_tmp, mode="w" if k == 0 else "a", header=k == 0,
                             index=False, date_format="%Y-%m-%d %H:%M:%S")
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    if csv is not None:
        os.replace(csv_tmp, csv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "mlopsc-scale-data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-csv", action="store_true", help="write the Parquet files only")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"scale_{args.rows}"
    write(out / f"{name}.parquet", args.rows, args.seed, 0.0, None if args.no_csv else out / f"{name}.csv")
    write(out / f"{name}_shifted.parquet", max(args.rows // 4, 1), args.seed, 1.0, None)
    print(f"wrote {out / name}.parquet{'' if args.no_csv else ' and .csv'} ({args.rows} rows) "
          f"and {name}_shifted.parquet ({max(args.rows // 4, 1)} rows)")


if __name__ == "__main__":
    main()
