"""`LoadedModel.predict` gives exactly the numbers of the model's own `predict` and `predict_proba`,
also where it calls a forest's trees itself (model.py `_tree_mean`) rather than through joblib."""
from __future__ import annotations

import numpy as np
import pytest
from mlopsc.runtime.serving.model import Feature, LoadedModel


def pipeline(estimator):
    from sklearn.base import is_classifier
    from sklearn.datasets import load_diabetes
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    frame = load_diabetes(as_frame=True).frame
    X = frame[["age", "bmi", "bp", "s1"]].copy()
    X.iloc[::7, 1] = np.nan               # the imputer fills them; the trees see no NaN
    classify = is_classifier(estimator)
    y = np.where(frame["target"] > 140, "high", "low") if classify else frame["target"]
    model = Pipeline([("impute", SimpleImputer()), ("estimator", estimator)]).fit(X, y)
    task = "classification" if classify else "regression"
    loaded = LoadedModel(name="m", version="1", model=model, task=task,
                         features=tuple(Feature(c, "number") for c in X.columns),
                         classes=tuple(model.classes_) if classify else (), has_proba=classify)
    return loaded, X


ESTIMATORS = {
    "RandomForestClassifier": {"n_estimators": 25, "random_state": 0},
    "ExtraTreesClassifier": {"n_estimators": 25, "random_state": 0},
    "RandomForestRegressor": {"n_estimators": 25, "random_state": 0},
    "ExtraTreesRegressor": {"n_estimators": 25, "random_state": 0},
    "HistGradientBoostingClassifier": {"max_iter": 20, "random_state": 0},   # classes read off its probabilities
    "DecisionTreeClassifier": {"max_depth": 3, "random_state": 0},          # ties between classes in its leaves
    "LogisticRegression": {},
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_predict_gives_the_models_own_numbers(name):
    import sklearn.ensemble
    import sklearn.linear_model
    import sklearn.tree

    module = next(m for m in (sklearn.ensemble, sklearn.linear_model, sklearn.tree) if hasattr(m, name))
    estimator = getattr(module, name)(**ESTIMATORS[name])
    loaded, X = pipeline(estimator)
    for rows in (X.iloc[:1], X):
        predictions, proba = loaded.predict(rows)
        assert np.array_equal(predictions, loaded.model.predict(rows))
        if loaded.has_proba:
            assert np.array_equal(proba, loaded.model.predict_proba(rows))
        else:
            assert proba is None
