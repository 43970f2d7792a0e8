"""Train stage: a real scikit-learn fit on the penguins example, logged to a real MLflow store."""
from __future__ import annotations

import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import StepError, artifacts, execute, tracking

FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex")


def test_trained_model_is_a_raw_column_pipeline(trained, penguins_split, penguins):
    assert trained["status"] == "ok" and trained["task"] == "classification"
    assert trained["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert trained["categorical"] == ["island", "sex"] and len(trained["numeric"]) == 4
    assert trained["params"] == {"n_estimators": 25, "max_depth": trained["best_params"]["max_depth"],
                                 "random_state": 3}
    assert len(trained["cv_scores"]) == 3 and 0.9 < trained["cv_score"] <= 1
    uri = trained["outputs"]["model"]["uri"]
    assert artifacts.sha256_of(uri) == trained["outputs"]["model"]["sha256"]
    model = artifacts.load_model(uri)
    # Raw rows in, with missing values and a category never seen in training.
    raw = penguins[list(FEATURES)].head(5).copy()
    raw.loc[raw.index[0], "island"] = "Atlantis"
    assert list(model.predict(raw)) == ["Adelie"] * 5
    meta = artifacts.model_metadata(uri)["mlopsc"]
    assert meta["target"] == "species" and meta["features"] == list(FEATURES)
    assert meta["data_sha256"] == artifacts.sha256_of(penguins_split["train"])


def test_training_is_logged_to_mlflow(trained, session_ctx, penguins_split):
    client = tracking.client(session_ctx)
    run = client.get_run(trained["mlflow_run_id"])
    assert run.data.tags["mlflow.parentRunId"] == session_ctx.parent_run_id
    assert run.data.tags["mlopsc.step"] == "species_model"
    assert run.data.params["estimator"] == "sklearn.ensemble.RandomForestClassifier"
    assert run.data.params["best.max_depth"] == str(trained["best_params"]["max_depth"])
    assert run.data.metrics["cv_score"] == pytest.approx(trained["cv_score"])
    (logged,) = run.inputs.dataset_inputs
    sha = artifacts.sha256_of(penguins_split["train"])
    assert logged.dataset.digest == sha[:16]
    assert {t.key: t.value for t in logged.tags}["mlopsc.sha256"] == sha
    model = artifacts.load_model(trained["model_uri"])   # the logged copy, e.g. models:/m-...
    assert list(model.classes_) == trained["classes"]


def regression_step(**kw) -> ir.Train:
    return ir.Train(**{"name": "mass_model", "data": ir.Ref(step="d"), "target": "body_mass_g",
                       "features": ("flipper_length_mm", "species", "sex"),
                       "estimator": ir.Estimator(name="sklearn.linear_model.Ridge"), **kw})


def test_regression_with_random_search_and_memory_output(ctx, penguins):
    data = "memory://train-test/mass.parquet"
    artifacts.write_parquet(penguins.dropna(subset=["body_mass_g"]), data)
    step = regression_step(tune=ir.Tune(method="random", space={"alpha": (0.1, 1.0, 10.0)}, n_iter=20,
                                        cv=3, metric="rmse"))
    result = execute(step, {"data": data}, {"model": "memory://train-test/model"}, ctx)
    assert result["task"] == "regression" and result["candidates"] == 3   # n_iter capped at the grid
    assert 200 < result["cv_score"] < 500   # rmse in grams, positive
    model = artifacts.load_model("memory://train-test/model")
    assert 2500 < model.predict(penguins[["flipper_length_mm", "species", "sex"]].head(3)).mean() < 6500


def test_preprocessing_overrides(ctx, out, penguins_split):
    step = ir.Train(name="ordinal", data=ir.Ref(step="s"), target="species", features=("island", "year"),
                    estimator=ir.Estimator(name="sklearn.tree.DecisionTreeClassifier",
                                           params={"max_depth": 2}),
                    preprocessing=ir.Preprocessing(encode="ordinal", categorical=("year",), scale=False))
    result = execute(step, {"data": penguins_split["train"]}, out(step), ctx)
    assert result["categorical"] == ["island", "year"] and result["numeric"] == []
    model = artifacts.load_model(result["outputs"]["model"]["uri"])
    assert type(model[0].named_transformers_["categorical"][-1]).__name__ == "OrdinalEncoder"


def assert_fails(step, ctx, out, data, *words):
    outputs = out(step)
    with pytest.raises(StepError) as info:
        execute(step, {"data": data}, outputs, ctx)
    text = str(info.value)
    for word in (f"step {step.name}", *words):
        assert word in text, text
    assert not any(artifacts.exists(u) for u in outputs.values())
    return text


def forest(**kw) -> ir.Train:
    return ir.Train(**{"name": "species_model", "data": ir.Ref(step="s"), "target": "species",
                       "estimator": ir.Estimator(name="sklearn.ensemble.RandomForestClassifier",
                                                 params={"n_estimators": 5}), **kw})


def test_missing_target_column(ctx, out, penguins_split):
    assert_fails(forest(target="specie"), ctx, out, penguins_split["train"], "'specie'",
                 "did you mean species")


def test_target_with_one_class(ctx, out, penguins, tmp_path):
    data = str(tmp_path / "adelie.parquet")
    artifacts.write_parquet(penguins[penguins.species == "Adelie"], data)
    assert_fails(forest(), ctx, out, data, "single class: 'Adelie'", "at least two classes")


def test_regressor_on_a_text_target(ctx, out, penguins_split):
    step = regression_step(target="species", features=("flipper_length_mm",))
    assert_fails(step, ctx, out, penguins_split["train"], "not numeric", "dtype str")


def test_classifier_on_a_continuous_target(ctx, out, penguins_split):
    assert_fails(forest(target="bill_depth_mm", features=("island",)), ctx, out, penguins_split["train"],
                 "missing value")   # bill_depth_mm has gaps: reported before its type
    data = f"{ctx.artifact_root}/no_gaps.parquet"
    artifacts.write_parquet(artifacts.read_parquet(penguins_split["train"]).dropna(), data)
    assert_fails(forest(target="bill_depth_mm", features=("island",)), ctx, out, data, "continuous")


def test_failing_fit(ctx, out, penguins_split):
    step = forest(estimator=ir.Estimator(name="sklearn.linear_model.LogisticRegression", params={"C": -1.0}))
    assert_fails(step, ctx, out, penguins_split["train"],
                 "fitting sklearn.linear_model.LogisticRegression failed", "InvalidParameterError")


def test_unknown_estimator_and_param(ctx, out, penguins_split):
    bad = forest(estimator=ir.Estimator(name="sklearn.ensemble.RandomForestClasifier"))
    assert_fails(bad, ctx, out, penguins_split["train"], "cannot be imported",
                 "did you mean sklearn.ensemble.RandomForestClassifier")
    not_estimator = forest(estimator=ir.Estimator(name="os.path.join"))
    assert_fails(not_estimator, ctx, out, penguins_split["train"], "not a scikit-learn estimator")
    param = forest(estimator=ir.Estimator(name="sklearn.ensemble.RandomForestClassifier",
                                          params={"trees": 3}))
    assert_fails(param, ctx, out, penguins_split["train"], "no parameter 'trees'", "n_estimators")


def test_binary_metric_on_three_classes_for_tuning(ctx, out, penguins_split):
    tune = ir.Tune(method="grid", space={"max_depth": (2,)}, cv=2, metric="f1")
    step = forest(features=FEATURES, tune=tune)
    assert_fails(step, ctx, out, penguins_split["train"], "f1 needs a binary target", "f1_macro")


def test_columns_of_the_wrong_type(ctx, out, penguins):
    data = f"{ctx.artifact_root}/dated.parquet"
    frame = penguins.assign(seen=pd.to_datetime(penguins.year.astype(str) + "-06-01"))
    artifacts.write_parquet(frame, data)
    assert_fails(forest(features=("bill_length_mm", "seen")), ctx, out, data,
                 "feature 'seen' has dtype datetime64", "derive numbers from dates")
    forced = forest(features=("bill_length_mm", "island"), preprocessing=ir.Preprocessing(numeric=("island",)))
    assert_fails(forced, ctx, out, data, "'island' is forced numeric but holds text", "'Torgersen'")


def test_task_that_contradicts_the_estimator(ctx, out, penguins_split):
    assert_fails(forest(task="regression"), ctx, out, penguins_split["train"],
                 "is a classification estimator but task = regression")


def mpg_model(**kw) -> ir.Train:
    return ir.Train(**{"name": "mpg_model", "data": ir.Ref(step="cars"), "target": "Miles_per_Gallon",
                       "features": ("Cylinders", "Displacement", "Weight_in_lbs", "Origin"),
                       "estimator": ir.Estimator(name="sklearn.linear_model.Ridge"), **kw})


def test_a_missing_target_fails_and_the_message_names_the_option(ctx, out, cars_data):
    text = assert_fails(mpg_model(), ctx, out, cars_data, "'Miles_per_Gallon' has 3 missing value(s)",
                        "3 of 40 rows without one", "missing_target = drop")
    assert "filter" not in text


def test_missing_target_drop_trains_on_the_rows_that_have_one(ctx, out, cars_data):
    result = execute(mpg_model(missing_target="drop"), {"data": cars_data}, out(mpg_model()), ctx)
    assert result["status"] == "ok" and result["rows"] == 37 and result["rows_without_target"] == 3
    assert result["notes"] == [("3 row(s) without a value for the target 'Miles_per_Gallon' dropped "
                               "(missing_target = drop)")]
    assert artifacts.model_metadata(result["outputs"]["model"]["uri"])["mlopsc"]["missing_target"] == "drop"
    assert tracking.client(ctx).get_run(result["mlflow_run_id"]).data.params["rows_without_target"] == "3"
    # Without the option, nothing was dropped, and the result says nothing of it.
    clean = f"{ctx.artifact_root}/cars/clean.parquet"
    artifacts.write_parquet(artifacts.read_parquet(cars_data).dropna(subset=["Miles_per_Gallon"]), clean)
    assert "rows_without_target" not in execute(mpg_model(), {"data": clean}, out(mpg_model()), ctx)


def test_a_target_missing_on_every_row(ctx, out, cars_data, tmp_path):
    data = str(tmp_path / "no_target.parquet")
    artifacts.write_parquet(artifacts.read_parquet(cars_data).assign(Miles_per_Gallon=float("nan")), data)
    assert_fails(mpg_model(missing_target="drop"), ctx, out, data, "no row has a value for the target")


def test_native_categoricals_are_logged_registered_and_served(ctx, out, penguins_split, penguins):
    """HistGradientBoosting gets ordinal codes and `categorical_features`, not a sparse one-hot
    (which it refuses); the model logs with skops, registers, loads back as `mlopsc serve` loads
    it, and answers raw rows that carry an unseen category and a missing one."""
    import uuid

    from mlopsc.runtime.serving.app import ServeConfig, create_app
    from mlopsc.runtime.serving.model import load_version
    from starlette.testclient import TestClient
    from threadpoolctl import threadpool_limits

    step = forest(name="boosted", features=FEATURES, estimator=ir.Estimator(
        name="sklearn.ensemble.HistGradientBoostingClassifier", params={"max_iter": 20}))
    with threadpool_limits(1):   # its OpenMP threads spinning for the suite's two shared cores cost seconds
        result = execute(step, {"data": penguins_split["train"]}, out(step), ctx)
    assert result["encoding"] == "native" and result["categorical"] == ["island", "sex"]
    registry = f"boosted-{uuid.uuid4().hex[:6]}"
    deploy = ir.Deploy(name="ship", model=ir.Ref(step="boosted"), registry=registry)
    release = execute(deploy, {"model": result["outputs"]["model"]["uri"]}, out(deploy), ctx)
    served = load_version(ctx.tracking_uri, registry, release["version"])
    assert served.model[-1].is_categorical_.tolist() == [False] * 4 + [True] * 2
    rows = penguins[list(FEATURES)].dropna().head(6).astype(object)
    rows.iloc[0, rows.columns.get_loc("island")] = "Atlantis"
    rows.iloc[1, rows.columns.get_loc("sex")] = None
    config = ServeConfig(model_name=registry, tracking_uri=ctx.tracking_uri, alias=None,
                         version=release["version"], poll_interval=0)
    with TestClient(create_app(config, served)) as client:
        answer = client.post("/invocations", json={"dataframe_records": rows.to_dict("records")})
    assert answer.status_code == 200, answer.text
    expected = served.model.predict(rows.astype({c: float for c in FEATURES[:4]}))
    assert answer.json()["predictions"] == list(expected)
