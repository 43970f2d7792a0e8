"""Predictions and class probabilities of a model in one pass over the rows.

A score step writes a classifier's predicted classes and its probabilities. Asking a Pipeline for `predict` and then `predict_proba` runs its preprocessing
and its estimator twice: on a million rows a batch score then costs twice the model's own
`predict`. Here the preprocessing runs once, and for the classifiers whose `predict` is the class
of the largest probability the classes are read off the probabilities.

Which classifiers those are is a list of types, each checked against its scikit-learn source: the
trees and forests predict the argmax of their probabilities by definition; HistGradientBoosting
predicts from raw scores (`> 0` for two classes, argmax for more) whose probabilities are a
strictly increasing function of them (sigmoid, softmax). Where two classes tie for the largest
probability the two rules can part (rounding, `> 0` against argmax's first index), so on those
rows `predict` itself answers: the classes are always exactly the estimator's own.
"""
from __future__ import annotations

from typing import Any


def predict_is_argmax_of_proba(estimator: Any) -> bool:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    single_output = getattr(estimator, "n_outputs_", 1) == 1
    return single_output and type(estimator) in (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier,
                                                 ExtraTreeClassifier, HistGradientBoostingClassifier)


def predict_with_proba(model: Any, X: Any, with_proba: bool = True) -> tuple[Any, Any]:
    """(predictions, class probabilities or None) of the rows of X. Probabilities come when
    `with_proba` and the model is a classifier that has them."""
    Xt, final = transformed(model, X)
    if not (with_proba and hasattr(final, "predict_proba") and hasattr(final, "classes_")):
        return final.predict(Xt), None
    proba = final.predict_proba(Xt)
    return classes_of(final, Xt, proba), proba


def transformed(model: Any, X: Any) -> tuple[Any, Any]:
    """(X through a Pipeline's preprocessing, its final estimator); (X, model) for a bare estimator."""
    steps = getattr(model, "steps", None)
    if steps and len(steps) > 1:
        return model[:-1].transform(X), steps[-1][1]
    return X, model


def classes_of(final: Any, Xt: Any, proba: Any) -> Any:
    """The classes `final.predict(Xt)` answers, read off `proba` (its `predict_proba(Xt)`) where
    that is the estimator's own rule, with `predict` itself on the rows where classes tie."""
    import numpy as np

    if not predict_is_argmax_of_proba(final):
        return final.predict(Xt)
    best = np.argmax(proba, axis=1)
    predicted = final.classes_.take(best, axis=0)
    tied = (proba == proba[np.arange(len(proba)), best][:, None]).sum(axis=1) > 1
    if tied.any():
        rows = np.flatnonzero(tied)
        predicted[rows] = final.predict(Xt.iloc[rows] if hasattr(Xt, "iloc") else Xt[rows])
    return predicted
