"""Metric implementations for the vocabulary in `mlopsc.compiler.metrics` (names are checked at
compile time; this module computes them).

Binary metrics (`precision`, `recall`, `f1` and their `_binary` forms, `roc_auc` on two classes)
take the positive class to be the second of the model's sorted classes — scikit-learn's
`classes_[1]`, the column `predict_proba(...)[:, 1]` — so they also work for text labels.
`roc_auc` on more than two classes is one-vs-rest, macro-averaged (as `roc_auc_ovr`).
Functions raise ValueError with a user-facing message when a metric does not fit the target.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_AVERAGED = ("precision", "recall", "f1")
NEEDS_PROBA = frozenset(["roc_auc", "roc_auc_ovr", "log_loss"])


def _split_average(metric: str) -> tuple[str, str]:
    """`f1_macro` -> ("f1", "macro"); plain `f1` -> ("f1", "binary")."""
    base, _, average = metric.partition("_")
    return base, average or "binary"


def _binary_positive(metric: str, classes: Sequence[Any]) -> Any:
    if len(classes) != 2:
        base = _split_average(metric)[0]
        raise ValueError(f"{metric} needs a binary target but the model has {len(classes)} classes "
                         f"(use {base}_macro, {base}_weighted or {base}_micro)")
    return classes[1]


def sklearn_scoring(metric: str, classes: Sequence[Any] = ()) -> Any:
    """The `scoring=` of a search for a vocabulary name: a scorer name or a scorer object."""
    from mlopsc.compiler.metrics import sklearn_scorer
    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score

    base, average = _split_average(metric)
    if base in _AVERAGED and average == "binary":
        positive = _binary_positive(metric, classes)
        fn = {"precision": precision_score, "recall": recall_score, "f1": f1_score}[base]
        return make_scorer(fn, pos_label=positive, zero_division=0)
    if metric == "roc_auc" and len(classes) > 2:
        return "roc_auc_ovr"
    return sklearn_scorer(metric)


def compute(metric: str, y_true: Any, y_pred: Any, proba: Any = None, classes: Sequence[Any] = ()) -> float:
    """One metric on predictions; `proba` are class probabilities in the order of `classes`."""
    import numpy as np
    from sklearn import metrics as m

    if metric in NEEDS_PROBA and proba is None:
        raise ValueError(f"{metric} needs class probabilities but the model has no predict_proba")
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, y_pred))
    base, average = _split_average(metric)
    if base in _AVERAGED:
        fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[base]
        if average == "binary":
            return float(fn(y_true, y_pred, pos_label=_binary_positive(metric, classes), zero_division=0))
        return float(fn(y_true, y_pred, average=average, zero_division=0))
    if metric in ("roc_auc", "roc_auc_ovr"):
        if len(classes) == 2:
            return float(m.roc_auc_score(np.asarray(y_true) == classes[1], np.asarray(proba)[:, 1]))
        present = set(np.unique(y_true))
        if present != set(classes):
            raise ValueError(f"{metric} one-vs-rest needs every class in the data; missing: "
                             f"{', '.join(map(str, sorted(set(classes) - present, key=str)))}")
        return float(m.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(classes)))
    if metric == "log_loss":
        return float(m.log_loss(y_true, proba, labels=list(classes)))
    regression = {"r2": m.r2_score, "rmse": m.root_mean_squared_error, "mae": m.mean_absolute_error,
                  "mape": m.mean_absolute_percentage_error}
    if metric in regression:
        return float(regression[metric](y_true, y_pred))
    raise ValueError(f"unknown metric {metric}")
