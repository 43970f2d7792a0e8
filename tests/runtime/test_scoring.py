"""Batch scoring computes classes and probabilities in one pass (runtime/scoring.py) and gives
exactly what the model's own `predict` and `predict_proba` give: for the classifiers whose classes
are read off the probabilities, for those that are asked both, on rows where classes tie, and for
a whole train-step Pipeline through the score stage's `predict`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import deploy, preprocessing, scoring
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
SIGNAL = X["a"] + 0.5 * X["b"] + rng.normal(0, 0.5, 600)


@pytest.fixture(autouse=True)
def one_thread():
    """HistGradientBoosting's OpenMP threads spinning for the suite's two shared cores make tiny
    fits take seconds."""
    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("estimator", [HistGradientBoostingClassifier(max_iter=20, random_state=0),
                                       RandomForestClassifier(n_estimators=10, random_state=0),
                                       DecisionTreeClassifier(max_depth=3, random_state=0),
                                       LogisticRegression()], ids=lambda e: type(e).__name__)
def test_one_pass_gives_the_models_own_answers(estimator, classes):
    y = pd.cut(SIGNAL, classes, labels=[f"k{i}" for i in range(classes)]).astype(str)
    model = estimator.fit(X, y)
    predicted, proba = scoring.predict_with_proba(model, X)
    assert (predicted == model.predict(X)).all() and np.array_equal(proba, model.predict_proba(X))


def test_rows_where_classes_tie_are_asked_of_predict():
    # Nothing to split on and balanced classes: every row's probabilities are exactly 0.5 / 0.5.
    flat = pd.DataFrame({"a": np.zeros(40)})
    model = HistGradientBoostingClassifier(max_iter=2).fit(flat, ["no", "yes"] * 20)
    predicted, proba = scoring.predict_with_proba(model, flat)
    assert (proba == 0.5).all() and (predicted == model.predict(flat)).all()


def test_the_score_stage_adds_the_pipelines_classes_and_probabilities():
    frame = X.assign(kind=np.where(X["a"] > 0, "up", "down"), label=np.where(SIGNAL > 0, "yes", "no"))
    step = ir.Train(name="t", data=ir.Ref(step="d"), target="label", estimator=ir.Estimator(
        name="sklearn.ensemble.HistGradientBoostingClassifier"))
    estimator = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model, features, _, _ = preprocessing.build_pipeline(step, estimator, frame[["a", "b", "kind"]])
    model.fit(features, frame["label"])
    scored = deploy.predict(ir.Score(name="s", data=ir.Ref(step="d"), model=ir.Ref(step="t")), model, frame)
    assert list(scored.columns) == [*frame.columns, "y_pred", "proba_no", "proba_yes"]
    assert (scored["y_pred"] == model.predict(frame)).all()
    assert np.array_equal(scored[["proba_no", "proba_yes"]].to_numpy(), model.predict_proba(frame))
    assert list(frame.columns) == ["a", "b", "kind", "label"]   # the input frame is left as it was
