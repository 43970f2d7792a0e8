"""Figures of the monitor section: each monitored column's reference against current, the
prediction distribution, and the latency of a served model over time. Each returns an SVG.

Numbers are drawn as histograms over shared bins (density, so sets of different sizes compare);
categories as bars of each category's share, from the shares the monitor step recorded.
"""
from __future__ import annotations

from typing import Any

from .. import drift_statistics
from .figures import (
    CURRENT,
    REFERENCE,
    axes_in,
    legend_above,
    new_figure,
    read_columns,
    short,
    styled,
    svg_of,
)

MAX_CATEGORIES = 12       # the most common ones; the rest are summed up as "other"
LATENCY_BUCKETS = 24
PERCENTILES = (50, 95, 99)


@styled
def column(name: str, kind: str, reference: str, current: str, shares: dict[str, dict[str, float]] | None,
           histogram: dict[str, list] | None = None) -> str:
    """Reference against current for one column (a monitored feature). A numeric column is drawn
    from the histogram its monitor step recorded; a record from before it recorded one, from the
    data."""
    fig = new_figure(3.6, 2.4)
    ax = axes_in(fig, left=0.8, bottom=0.5, right=0.1, top=0.3)    # room for densities like 0.0006
    if kind == "numeric":
        _densities(ax, histogram or _histogram_of(name, reference, current))
        ax.set_ylabel("density")
        ax.set_xlabel(short(name, 40))
    else:
        _share_bars(ax, shares or {})
        ax.set_ylabel("share of rows")
    legend_above(ax)
    return svg_of(fig)


def _histogram_of(name: str, reference: str, current: str) -> dict[str, list] | None:
    import numpy as np

    ref = read_columns(reference, [name])[name].dropna().to_numpy(dtype=float)
    cur = read_columns(current, [name])[name].dropna().to_numpy(dtype=float)
    return drift_statistics.histogram(np.sort(ref), np.sort(cur))


def _densities(ax: Any, histogram: dict[str, list]) -> None:
    import numpy as np

    edges = np.asarray(histogram["edges"], dtype=float)
    widths = np.diff(edges)
    for which, style in (("reference", {"fill": True, "color": REFERENCE, "alpha": 0.55}),
                         ("current", {"color": CURRENT, "linewidth": 1.8})):
        counts = np.asarray(histogram[which], dtype=float)
        density = counts / (counts.sum() * widths) if counts.sum() else counts
        ax.stairs(density, edges, label=which, **style)


def _share_bars(ax: Any, shares: dict[str, dict[str, float]]) -> None:
    import numpy as np

    ordered = sorted(shares, key=lambda k: -(shares[k].get("reference", 0) + shares[k].get("current", 0)))
    shown, rest = ordered[:MAX_CATEGORIES], ordered[MAX_CATEGORIES:]
    rows = [(short(k, 14), shares[k].get("reference", 0.0), shares[k].get("current", 0.0)) for k in shown]
    if rest:
        rows.append((f"other ({len(rest)})", sum(shares[k].get("reference", 0.0) for k in rest),
                     sum(shares[k].get("current", 0.0) for k in rest)))
    positions = np.arange(len(rows))
    ax.bar(positions - 0.2, [r[1] for r in rows], width=0.4, color=REFERENCE, label="reference")
    ax.bar(positions + 0.2, [r[2] for r in rows], width=0.4, color=CURRENT, label="current")
    ax.set_xticks(positions, [r[0] for r in rows], rotation=30 if len(rows) > 4 else 0,
                  ha="right" if len(rows) > 4 else "center")


@styled
def prediction(entry: dict[str, Any]) -> str:
    """The model's predictions on the reference and the current data: shares of each predicted
    class, or the mean and spread of predicted values (what the monitor step recorded)."""
    fig = new_figure(3.6, 2.4)
    ax = axes_in(fig, left=0.8, bottom=0.5, right=0.1, top=0.3)
    if entry.get("type") == "numeric":
        for i, (which, colour) in enumerate((("reference", REFERENCE), ("current", CURRENT))):
            mean, std = entry["mean"][which], entry["std"][which]
            ax.errorbar([mean], [i], xerr=[std], fmt="o", color=colour, capsize=4, label=which)
        ax.set_yticks([0, 1], ["reference", "current"])
        ax.set_ylim(-0.7, 1.7)
        ax.set_xlabel("predicted value (mean ± std)")
    else:
        _share_bars(ax, entry.get("shares") or {})
        ax.set_ylabel("share of predictions")
    legend_above(ax)
    return svg_of(fig)


def latency_table(current: str) -> list[dict[str, Any]]:
    """Latency percentiles of each time bucket of a served log, one row per bucket: each request
    counts once (its rows share one latency)."""
    import numpy as np
    import pandas as pd

    frame = read_columns(current, ["request_id", "timestamp", "latency_ms"])
    if not {"request_id", "timestamp", "latency_ms"} <= set(frame.columns):
        return []
    frame = frame.assign(request=frame["request_id"].astype(str).str.split("/").str[0])
    per_request = frame.drop_duplicates("request").dropna(subset=["latency_ms", "timestamp"])
    if per_request.empty:
        return []
    times = pd.to_datetime(per_request["timestamp"], utc=True)
    start, end = times.min(), times.max()
    buckets = max(1, min(LATENCY_BUCKETS, len(per_request) // 5))
    width = (end - start) / buckets if end > start else pd.Timedelta(seconds=1)
    index = ((times - start) / width).astype(int).clip(upper=buckets - 1) if end > start else times * 0
    rows = []
    for bucket, group in per_request.groupby(np.asarray(index)):
        values = group["latency_ms"].to_numpy(dtype=float)
        rows.append({"start": (start + width * int(bucket)).isoformat(timespec="seconds"), "requests": len(values),
                     **{f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}})
    return rows


@styled
def latency(current: str) -> str:
    """p50, p95 and p99 latency per time bucket of the served log."""
    import pandas as pd

    rows = latency_table(current)
    fig = new_figure(7.4, 2.6)
    ax = axes_in(fig, left=0.6, bottom=0.6, right=0.1, top=0.3)
    if not rows:
        ax.text(0.5, 0.5, "no request with a latency in the current data", ha="center", va="center",
                transform=ax.transAxes)
        return svg_of(fig)
    times = pd.to_datetime([r["start"] for r in rows])
    for p, colour in zip(PERCENTILES, ("#2f6db5", "#e07b39", "#c62828")):
        ax.plot(times, [r[f"p{p}"] for r in rows], marker="o", markersize=3, linewidth=1.5, color=colour, label=f"p{p}")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    legend_above(ax, columns=3)
    fig.autofmt_xdate(rotation=20, bottom=0.6 / 2.6)
    return svg_of(fig)
