"""The monitor's drift statistics (runtime/drift_statistics.py) read off sorted samples give the
numbers of the straightforward computation they replaced: `np.histogram` bins at the reference's
deciles and `scipy.stats.ks_2samp`, kept here as the oracle. Samples above scipy's exact-p-value
size take the fast path; ties, missing values and whole numbers are in them."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mlopsc.runtime.drift_statistics import BINS, FLOOR, HISTOGRAM_BINS, drift
from scipy.stats import ks_2samp

ROWS = 12_000   # above scipy's exact-method limit (10,000): the fast path


def oracle(reference: pd.Series, current: pd.Series) -> dict:
    """What the monitor computed before: KS by scipy, PSI by np.histogram on unsorted values."""
    reference, current = reference.dropna(), current.dropna()
    ref, cur = reference.to_numpy(dtype=float), current.to_numpy(dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1))[1:-1])
    edges = np.concatenate([[-np.inf], edges, [np.inf]])
    shares = [np.histogram(values, edges)[0] / len(values) for values in (ref, cur)]
    psi = sum((max(c, FLOOR) - max(r, FLOOR)) * math.log(max(c, FLOOR) / max(r, FLOOR))
              for r, c in zip(*shares))
    ks = ks_2samp(ref, cur)
    return {"psi": psi, "ks": {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue)},
            "mean": {"reference": float(reference.mean()), "current": float(current.mean())},
            "std": {"reference": float(reference.std()), "current": float(current.std())}}


def samples(seed: int, rows: int, shift: float) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    gaps = np.where(rng.random(rows) < 0.05, np.nan, rng.normal(shift, 1, rows))
    return {"continuous": pd.Series(gaps),
            "whole numbers (ties)": pd.Series(rng.poisson(3 + shift, rows)),
            "few values": pd.Series(rng.choice([0.0, 0.5, 1.0], rows)),
            "nullable ints": pd.Series(rng.integers(0, 20, rows), dtype="Int64").mask(rng.random(rows) < 0.1)}


@pytest.mark.parametrize("rows", [ROWS, 300])
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_numeric_statistics_equal_the_straightforward_ones(rows, shift):
    reference, current = samples(1, rows, 0.0), samples(2, rows * 3 // 4, shift)
    for name in reference:
        got, expected = drift(reference[name], current[name]), oracle(reference[name], current[name])
        assert got["type"] == "numeric", name
        assert got["ks"]["statistic"] == expected["ks"]["statistic"], name   # the very same number
        assert got["ks"]["pvalue"] == pytest.approx(expected["ks"]["pvalue"], rel=1e-12, abs=1e-300), name
        assert got["psi"] == pytest.approx(expected["psi"], rel=1e-12, abs=1e-15), name
        assert got["mean"] == expected["mean"] and got["std"] == expected["std"], name


def test_ks_is_symmetric_in_the_samples_order():
    # The fast path searches the smaller sample in the larger one: either order, scipy's numbers.
    small, large = samples(3, ROWS + 10, 0.2)["continuous"], samples(4, 3 * ROWS, 0.0)["continuous"]
    for reference, current in ((small, large), (large, small)):
        assert drift(reference, current)["ks"]["statistic"] == oracle(reference, current)["ks"]["statistic"]


def test_datetimes_are_compared_as_time_not_as_a_category_per_timestamp():
    start = pd.Timestamp("2025-01-01", tz="UTC")
    reference = pd.Series(start + pd.to_timedelta(np.arange(ROWS) * 60, unit="s"))
    current = reference + pd.Timedelta(days=3)
    got = drift(reference, current)
    seconds = oracle((reference - pd.Timestamp(0, tz="UTC")).dt.total_seconds(),
                     (current - pd.Timestamp(0, tz="UTC")).dt.total_seconds())
    assert got["type"] == "numeric" and "shares" not in got
    assert got["ks"]["statistic"] == seconds["ks"]["statistic"] and got["psi"] == pytest.approx(seconds["psi"])


def test_empty_and_categorical_samples_are_unchanged():
    assert drift(pd.Series([np.nan, np.nan]), pd.Series([1.0]))["type"] == "empty"
    got = drift(pd.Series(["a", "b", "b", None]), pd.Series(["b", "c"]))
    assert got["type"] == "categorical" and set(got["shares"]) == {"a", "b", "c"}
    assert got["null_fraction"] == {"reference": 0.25, "current": 0.0}


def test_the_histogram_the_report_draws_is_numpys_over_both_samples():
    reference, current = samples(5, ROWS, 0.0), samples(6, ROWS // 3, 0.4)
    for name in reference:
        ref, cur = reference[name].dropna().to_numpy(dtype=float), current[name].dropna().to_numpy(dtype=float)
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=HISTOGRAM_BINS)
        got = drift(reference[name], current[name])["histogram"]
        assert got["edges"] == edges.tolist(), name
        assert got["reference"] == np.histogram(ref, edges)[0].tolist(), name
        assert got["current"] == np.histogram(cur, edges)[0].tolist(), name
    constant = drift(pd.Series([2.0] * 5), pd.Series([2.0] * 3))["histogram"]     # one value: numpy's +-0.5
    assert constant["edges"][0] == 1.5 and constant["edges"][-1] == 2.5 and sum(constant["reference"]) == 5
    with np.errstate(invalid="ignore"):       # the deviation and deciles of infinities are NaN
        with_infinities = drift(pd.Series([1.0, np.inf, 3.0]), pd.Series([-np.inf, 2.0]))
    assert with_infinities["histogram"]["edges"][0] == 1.0 and with_infinities["histogram"]["edges"][-1] == 3.0
    assert sum(with_infinities["histogram"]["reference"]) == 2 and sum(with_infinities["histogram"]["current"]) == 1
    with np.errstate(invalid="ignore"):
        assert drift(pd.Series([np.inf]), pd.Series([-np.inf]))["histogram"] is None
