"""The metric vocabulary shared by the compiler (name checks) and the runtime (computation).

Standard library only: the runtime imports this on workers without lark or networkx.
"""
from __future__ import annotations

_AVERAGED = ("precision", "recall", "f1")
_AVERAGES = ("binary", "micro", "macro", "weighted")

CLASSIFICATION: frozenset[str] = frozenset(
    ["accuracy", "roc_auc", "roc_auc_ovr", "log_loss", *_AVERAGED]
    + [f"{m}_{avg}" for m in _AVERAGED for avg in _AVERAGES]
)
REGRESSION: frozenset[str] = frozenset(["r2", "rmse", "mae", "mape"])
METRICS: frozenset[str] = CLASSIFICATION | REGRESSION

# Errors and losses: lower is better. A tuner maximises, so it gets the negated scorer.
LOWER_IS_BETTER: frozenset[str] = frozenset(["log_loss", "rmse", "mae", "mape"])


def task_of(metric: str) -> str | None:
    """"classification", "regression", or None for a name outside the vocabulary."""
    if metric in CLASSIFICATION:
        return "classification"
    if metric in REGRESSION:
        return "regression"
    return None


def sklearn_scorer(metric: str) -> str:
    """The scikit-learn scoring string for a vocabulary name (plain precision/recall/f1 are binary,
    as in scikit-learn)."""
    special = {
        "log_loss": "neg_log_loss", "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error", "mape": "neg_mean_absolute_percentage_error",
    }
    if metric in special:
        return special[metric]
    if metric not in METRICS:
        raise KeyError(metric)
    return metric.removesuffix("_binary")
