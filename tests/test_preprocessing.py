"""The automatic preprocessing fits the estimator (runtime/preprocessing.py): every scikit-learn
classifier and regressor that a spec can name and that can learn a single target from a table fits
and predicts on a small mixed frame, numbers with gaps, a low- and a high-cardinality text column and
a boolean, through the very Pipeline a train step builds. No MLflow here: that is test_train.py's.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import preprocessing, train
from sklearn.utils import all_estimators
from threadpoolctl import threadpool_limits

ESTIMATORS = {name: cls for kind in ("classifier", "regressor") for name, cls in all_estimators(type_filter=kind)}

# What cannot take a table and one target in principle, each with why.
NEEDS_INNER_ESTIMATOR = "a meta-estimator without a default inner estimator; a spec's estimator params are literals"
SKIPPED = {
    **dict.fromkeys(["ClassifierChain", "FixedThresholdClassifier", "MultiOutputClassifier", "OneVsOneClassifier",
                     "OneVsRestClassifier", "OutputCodeClassifier", "SelfTrainingClassifier",
                     "StackingClassifier", "TunedThresholdClassifierCV", "VotingClassifier",
                     "MultiOutputRegressor", "RegressorChain", "StackingRegressor", "VotingRegressor"],
                    NEEDS_INNER_ESTIMATOR),
    **dict.fromkeys(["MultiTaskElasticNet", "MultiTaskElasticNetCV", "MultiTaskLasso", "MultiTaskLassoCV"],
                    "multi-output only: refuses a single target"),
    **dict.fromkeys(["CCA", "PLSCanonical"],
                    "relates two multivariate blocks: its default n_components = 2 needs a target of 2+ columns"),
    "IsotonicRegression": "takes exactly one feature",
    "QuadraticDiscriminantAnalysis": "the one-hot columns of a feature sum to 1, so every class's covariance "
                                     "is singular; it needs reg_param > 0 for any one-hot input",
}
FITTED = sorted(set(ESTIMATORS) - set(SKIPPED))
# Params other than the defaults, each with why.
PARAMS = {"RadiusNeighborsClassifier": {"outlier_label": "most_frequent"},   # new rows: none within radius 1
          "TheilSenRegressor": {"max_subpopulation": 500}}   # its default 10,000 least-squares fits take seconds


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(10, 3, rows)),
        "count": rng.integers(0, 50, rows),
        "color": rng.choice(np.array(["red", "green", "blue", None], dtype=object), rows),
        "city": [f"city{i}" for i in rng.integers(0, 30, rows)],   # 30 levels: above one-hot's 20
        "flag": rng.random(rows) < 0.5,
    })


def train_step(cls: type, **preprocessing_options) -> ir.Train:
    name = f"{cls.__module__.split('._')[0]}.{cls.__name__}"
    estimator = ir.Estimator(name=name, params=PARAMS.get(cls.__name__, {}))
    return ir.Train(name="t", data=ir.Ref(step="d"), target="y", estimator=estimator,
                    preprocessing=ir.Preprocessing(**preprocessing_options))


def target(frame: pd.DataFrame, task: str) -> np.ndarray:
    signal = frame["count"] + 5 * frame["flag"]
    # Positive numbers: Gamma, Poisson and Tweedie regressors take no other target.
    return np.where(signal > 27, "yes", "no") if task == "classification" else 1.0 + 2.0 * signal


def test_the_skip_list_names_estimators_that_exist():
    assert set(SKIPPED) | set(PARAMS) <= set(ESTIMATORS), set(SKIPPED) | set(PARAMS) - set(ESTIMATORS)
    assert "HistGradientBoostingClassifier" in FITTED and "HistGradientBoostingRegressor" in FITTED


@pytest.mark.parametrize("name", FITTED)
def test_every_estimator_fits_and_predicts_with_the_default_preprocessing(name):
    cls, frame = ESTIMATORS[name], mixed_frame(60)
    served = mixed_frame(5, seed=1)
    served.loc[0, ["city", "color"]] = ["a city never seen", None]
    served.loc[1, "size"] = np.nan
    # One thread: two cores are shared by the whole suite, and BLAS or OpenMP threads spinning for
    # a core make tiny fits take seconds.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # convergence and deprecation warnings: the step reports them
        step = train_step(cls)
        estimator = train.make_estimator(step, cls)
        pipeline, X, numeric, categorical = preprocessing.build_pipeline(step, estimator, frame)
        pipeline.fit(X, target(frame, train.infer_task(step, estimator)))
        predicted = pipeline.predict(served.astype({c: "float64" for c in numeric}))
    assert numeric == ["size", "count", "flag"] and categorical == ["color", "city"]
    assert len(predicted) == 5


def fitted(cls: type, **preprocessing_options):
    step = train_step(cls, **preprocessing_options)
    estimator = train.make_estimator(step, cls)
    frame = mixed_frame(300)
    pipeline, X, _, _ = preprocessing.build_pipeline(step, estimator, frame)
    with threadpool_limits(1):
        pipeline.fit(X, target(frame, train.infer_task(step, estimator)))
    return step, pipeline


def test_hist_gradient_boosting_gets_native_categoricals():
    from sklearn.ensemble import HistGradientBoostingClassifier

    step, model = fitted(HistGradientBoostingClassifier)
    assert preprocessing.encoding(step, model[-1]) == "native"
    # Numbers first (size, count, flag), then one code column per categorical feature.
    assert model[-1].categorical_features == [3, 4] and model[-1].is_categorical_.tolist() == [0, 0, 0, 1, 1]
    assert model[0].transform(mixed_frame(4)).shape == (4, 5)


def test_one_hot_is_capped_and_dense_where_the_estimator_needs_it():
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    _, sparse_ok = fitted(LogisticRegression)
    encoder = sparse_ok[0].named_transformers_["categorical"][-1]
    # color: blue, green, red (missing values imputed); city: the 19 most frequent + "infrequent".
    assert [len(c) for c in encoder.categories_] == [3, 30]
    assert len(encoder.get_feature_names_out()) == 3 + 20 and encoder.sparse_output
    _, dense = fitted(GaussianNB)
    assert isinstance(dense[0].transform(mixed_frame(4)), np.ndarray)
    _, wider = fitted(LogisticRegression, max_categories=40)
    assert len(wider[0].named_transformers_["categorical"][-1].get_feature_names_out()) == 3 + 30


def test_positive_only_estimators_get_numbers_in_zero_one():
    from sklearn.naive_bayes import MultinomialNB

    _, model = fitted(MultinomialNB)
    far = mixed_frame(4).assign(size=[-1e6, 0.0, 5.0, 1e6]).astype({"count": "float64", "flag": "float64"})
    numbers = model[0].transform(far)[:, :3]
    numbers = numbers.toarray() if hasattr(numbers, "toarray") else numbers
    assert numbers.min() >= 0 and numbers.max() <= 1   # clipped: served values outside training stay valid


def test_explicit_encodings_are_kept():
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.tree import DecisionTreeRegressor

    step, model = fitted(HistGradientBoostingRegressor, encode="onehot")
    assert preprocessing.encoding(step, model[-1]) == "onehot" and model[-1].categorical_features == "from_dtype"
    _, model = fitted(DecisionTreeRegressor, encode="ordinal", max_categories=5)
    codes = model[0].transform(mixed_frame(300))[:, -1]
    assert set(codes) <= {0, 1, 2, 3, 4}


@pytest.mark.parametrize(("name", "options"), [("HistGradientBoostingClassifier", {}),
                                               ("LogisticRegression", {"max_categories": 40})])
def test_a_cap_no_column_reaches_is_left_out_and_every_row_encodes_alike(name, options):
    # scikit-learn applies a cap by counting every value in Python: seconds on a million rows.
    cls, frame, served = ESTIMATORS[name], mixed_frame(300), mixed_frame(50, seed=1)
    served.loc[0, ["city", "color"]] = ["a city never seen", None]
    step = train_step(cls, **options)
    pipeline, X, numeric, categorical = preprocessing.build_pipeline(step, train.make_estimator(step, cls), frame)
    assert pipeline[0].transformers[-1][1][-1].max_categories is None      # city's 30 levels are under the cap
    capped = preprocessing.build_preprocessor(step, train.make_estimator(step, cls), numeric, categorical)
    assert capped.transformers[-1][1][-1].max_categories in (40, 255)

    def dense(matrix):
        return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)

    served = served.astype({c: "float64" for c in numeric})
    assert np.array_equal(dense(pipeline[0].fit(X).transform(served)), dense(capped.fit(X).transform(served)),
                          equal_nan=True)
