"""Figures of the evaluation, explanation and fairness sections, drawn from the evaluate step's
predictions (the data's columns plus `y_true`, `y_pred`, `proba_<class>`) and from numbers the
collector already holds (importance, fairness rates). Each returns an SVG document.
"""
from __future__ import annotations

from typing import Any

from .figures import (
    CANDIDATE,
    CHAMPION,
    axes_in,
    legend_above,
    new_figure,
    read_columns,
    short,
    styled,
    svg_of,
)

MAX_CLASSES = 30        # a confusion matrix larger than this would be unreadable: the most frequent


@styled
def confusion(predictions: str, classes: list[Any]) -> str:
    """Counts of (true class, predicted class): the diagonal is what the model got right."""
    import numpy as np
    import pandas as pd

    frame = read_columns(predictions, ["y_true", "y_pred"])
    truth, predicted = frame["y_true"].astype(str), frame["y_pred"].astype(str)
    labels = [str(c) for c in classes] or sorted(set(truth) | set(predicted))
    if len(labels) > MAX_CLASSES:
        labels = list(truth.value_counts().index[:MAX_CLASSES])
    counts = pd.crosstab(truth, predicted).reindex(index=labels, columns=labels, fill_value=0).to_numpy()
    side = max(2.2, (0.42 if len(labels) < 12 else 0.3) * len(labels))    # the matrix, in inches
    fig = new_figure(1.35 + side, 0.95 + side)
    ax = axes_in(fig, left=1.2, bottom=0.8, right=0.15, top=0.15)
    ax.grid(False)
    ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0)
    high = counts.max() if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=9,
                color="white" if high and value > high * 0.55 else "#222222")
    names = [short(label, 16) for label in labels]
    tilted = len(labels) > 3
    ax.set_xticks(range(len(labels)), names, rotation=30 if tilted else 0, ha="right" if tilted else "center")
    ax.set_yticks(range(len(labels)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    return svg_of(fig)


def _binary(predictions: str, positive: Any) -> tuple[Any, Any]:
    frame = read_columns(predictions, ["y_true", f"proba_{positive}"])
    return (frame["y_true"].astype(str) == str(positive)).to_numpy(), frame[f"proba_{positive}"].to_numpy()


@styled
def roc(predictions: str, positive: Any) -> str:
    """The ROC curve of the positive class's probability, with its area."""
    from sklearn.metrics import roc_auc_score, roc_curve

    truth, score = _binary(predictions, positive)
    fig = new_figure(3.4, 3.1)
    ax = axes_in(fig, left=0.6, bottom=0.5, right=0.15, top=0.2)
    if truth.all() or not truth.any():
        ax.text(0.5, 0.5, "one class only in the data:\nno curve", ha="center", va="center")
    else:
        fpr, tpr, _ = roc_curve(truth, score)
        ax.plot(fpr, tpr, color=CANDIDATE, linewidth=1.8, label=f"AUC {roc_auc_score(truth, score):.3f}")
        ax.legend(loc="lower right")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=1, linestyle="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    return svg_of(fig)


@styled
def precision_recall(predictions: str, positive: Any) -> str:
    """Precision against recall of the positive class, with the share of positives as a baseline."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    truth, score = _binary(predictions, positive)
    fig = new_figure(3.4, 3.1)
    ax = axes_in(fig, left=0.6, bottom=0.5, right=0.15, top=0.2)
    if not truth.any():
        ax.text(0.5, 0.5, "no positive row in the data:\nno curve", ha="center", va="center")
    else:
        precision, recall, _ = precision_recall_curve(truth, score)
        ax.plot(recall, precision, color=CANDIDATE, linewidth=1.8,
                label=f"average precision {average_precision_score(truth, score):.3f}")
        ax.axhline(truth.mean(), color="#bbbbbb", linewidth=1, linestyle="--")
        ax.legend(loc="lower left")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    return svg_of(fig)


@styled
def actual_vs_predicted(predictions: str) -> str:
    """Each row's prediction against its actual value; on the diagonal, the model is right."""
    frame = read_columns(predictions, ["y_true", "y_pred"])
    fig = new_figure(3.4, 3.1)
    ax = axes_in(fig, left=0.6, bottom=0.5, right=0.15, top=0.2)
    ax.scatter(frame["y_true"], frame["y_pred"], s=12, alpha=0.6, color=CANDIDATE, linewidths=0)
    low = float(min(frame["y_true"].min(), frame["y_pred"].min()))
    high = float(max(frame["y_true"].max(), frame["y_pred"].max()))
    ax.plot([low, high], [low, high], color="#999999", linewidth=1, linestyle="--")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    return svg_of(fig)


@styled
def residuals(predictions: str) -> str:
    """Actual minus predicted, against the prediction: a pattern means the model is off somewhere."""
    frame = read_columns(predictions, ["y_true", "y_pred"])
    fig = new_figure(3.4, 3.1)
    ax = axes_in(fig, left=0.6, bottom=0.5, right=0.15, top=0.2)
    ax.scatter(frame["y_pred"], frame["y_true"] - frame["y_pred"], s=12, alpha=0.6, color=CANDIDATE, linewidths=0)
    ax.axhline(0, color="#999999", linewidth=1, linestyle="--")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual − predicted")
    return svg_of(fig)


@styled
def importance(features: list[str], candidate: list[list[float]], champion: list[float | None] | None,
               metric: str, champion_label: str) -> str:
    """Permutation importance per feature (how much worse the metric gets when the feature is
    shuffled: mean and one standard deviation), beside the champion's when it is known."""
    import numpy as np

    count = len(features)
    fig = new_figure(5.2, 1.0 + 0.32 * max(count, 1))
    ax = axes_in(fig, left=1.5, bottom=0.5, right=0.2, top=0.35)
    ax.grid(axis="y", visible=False)
    rows = np.arange(count)[::-1]
    height = 0.38 if champion else 0.6
    means = [m for m, _ in candidate]
    ax.barh(rows + (height / 2 if champion else 0), means, height=height, xerr=[s for _, s in candidate],
            color=CANDIDATE, error_kw={"elinewidth": 0.8, "ecolor": "#444444"}, label="this model")
    if champion:
        ax.barh(rows - height / 2, [v if v is not None else 0 for v in champion], height=height, color=CHAMPION,
                label=champion_label)
    ax.set_yticks(rows, [short(f, 24) for f in features])
    ax.axvline(0, color="#888888", linewidth=0.8)
    ax.set_xlabel(f"how much worse {metric} gets when the feature is shuffled")
    legend_above(ax)
    return svg_of(fig)


@styled
def fairness(groups: dict[str, dict[str, float]], measure: str, column: str) -> str:
    """The rate the fairness measure compares, per group of the sensitive column and per class."""
    import numpy as np

    names = list(groups)
    classes = sorted({c for rates in groups.values() for c in rates})
    fig = new_figure(max(3.4, 1.0 + 0.3 * len(names) * max(len(classes), 1)), 2.9)
    ax = axes_in(fig, left=0.6, bottom=0.5, right=0.15, top=0.4)
    width = 0.8 / max(len(classes), 1)
    positions = np.arange(len(names))
    palette = ["#2f6db5", "#e07b39", "#3a9a5b", "#9a4fb5", "#b5a22f", "#4fb5ad", "#b54f6a"]
    for i, cls in enumerate(classes):
        ax.bar(positions + (i - (len(classes) - 1) / 2) * width, [groups[g].get(cls, 0.0) for g in names],
               width=width, color=palette[i % len(palette)], label=short(cls, 18))
    ax.set_xticks(positions, [short(n, 14) for n in names])
    ax.set_xlabel(column)
    ax.set_ylabel("predicted share" if measure == "demographic_parity" else "true positive rate")
    ax.set_ylim(0, 1.05)
    legend_above(ax, columns=min(len(classes), 4))
    return svg_of(fig)
