"""Evaluate stage: real metrics of real models on held-out penguins, logged to MLflow."""
from __future__ import annotations

import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import StepError, artifacts, execute, tracking

FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex")


def evaluate(metrics, name="species_eval") -> ir.Evaluate:
    return ir.Evaluate(name=name, model=ir.Ref(step="species_model"),
                       data=ir.Ref(step="penguins_split", port="test"), metrics=tuple(metrics))


@pytest.fixture(scope="module")
def evaluated(session_ctx, trained, penguins_split) -> dict:
    step = evaluate(["accuracy", "f1_macro", "precision_weighted", "recall_micro", "roc_auc", "log_loss"])
    outputs = artifacts.output_uris(f"{session_ctx.artifact_root}/species_eval", step)
    return execute(step, {"model": trained["outputs"]["model"]["uri"], "data": penguins_split["test"]},
                   outputs, session_ctx)


def test_forest_classifies_held_out_penguins(evaluated, trained, penguins_split):
    m = evaluated["metrics"]
    assert m["accuracy"] > 0.9 and m["f1_macro"] > 0.9
    assert 0.9 < m["roc_auc"] <= 1 and 0 < m["log_loss"] < 0.5
    test = artifacts.read_parquet(penguins_split["test"])
    preds = artifacts.read_parquet(evaluated["outputs"]["predictions"]["uri"])
    assert len(preds) == len(test) == evaluated["rows"]
    assert list(preds.columns[: len(test.columns)]) == list(test.columns)
    assert {"y_true", "y_pred", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"} <= set(preds.columns)
    # The reported accuracy is the predictions' own accuracy, not a number from elsewhere.
    assert m["accuracy"] == pytest.approx((preds.y_true == preds.y_pred).mean())
    doc = artifacts.read_json(evaluated["outputs"]["metrics"]["uri"])
    assert doc["metrics"] == m and doc["task"] == "classification" and doc["rows"] == len(test)
    assert doc["model_sha256"] == trained["outputs"]["model"]["sha256"]
    assert doc["data_sha256"] == artifacts.sha256_of(penguins_split["test"])


def test_metrics_and_plot_are_in_mlflow(evaluated, trained, session_ctx):
    client = tracking.client(session_ctx)
    run = client.get_run(evaluated["mlflow_run_id"])
    assert run.data.tags["mlflow.parentRunId"] == session_ctx.parent_run_id
    assert run.data.metrics["accuracy"] == pytest.approx(evaluated["metrics"]["accuracy"])
    names = {a.path for a in client.list_artifacts(evaluated["mlflow_run_id"])}
    assert {"confusion_matrix.png", "metrics.json"} <= names
    # The training run (the one a registered version points to) carries the metrics too.
    train_run = client.get_run(trained["mlflow_run_id"])
    assert train_run.data.metrics["f1_macro"] == pytest.approx(evaluated["metrics"]["f1_macro"])


def test_binary_classifier_metrics(ctx, out, penguins):
    data = f"{ctx.artifact_root}/two.parquet"
    artifacts.write_parquet(penguins[penguins.species != "Chinstrap"], data)
    train = ir.Train(name="two", data=ir.Ref(step="d"), target="species", features=FEATURES[:3],
                     estimator=ir.Estimator(name="sklearn.linear_model.LogisticRegression"))
    model = execute(train, {"data": data}, out(train), ctx)["outputs"]["model"]["uri"]
    metrics = ["f1", "precision_binary", "recall", "roc_auc", "roc_auc_ovr", "accuracy"]
    step = evaluate(metrics, name="two_eval")
    # Rows with missing measurements are scored too: the model imputes them.
    m = execute(step, {"model": model, "data": data}, out(step), ctx)["metrics"]
    assert m["f1"] > 0.95 and m["roc_auc"] == pytest.approx(m["roc_auc_ovr"]) and m["roc_auc"] > 0.95


def test_regression_metrics_and_residual_plot(ctx, out, penguins):
    data = f"{ctx.artifact_root}/mass.parquet"
    artifacts.write_parquet(penguins.dropna(subset=["body_mass_g"]), data)
    train = ir.Train(name="mass", data=ir.Ref(step="d"), target="body_mass_g",
                     features=("flipper_length_mm", "species"),
                     estimator=ir.Estimator(name="sklearn.linear_model.Ridge"))
    model = execute(train, {"data": data}, out(train), ctx)["outputs"]["model"]["uri"]
    step = evaluate(["r2", "rmse", "mae", "mape"], name="mass_eval")
    result = execute(step, {"model": model, "data": data}, out(step), ctx)
    m = result["metrics"]
    assert 0.7 < m["r2"] < 1 and 200 < m["mae"] < m["rmse"] < 500 and 0 < m["mape"] < 0.2
    names = {a.path for a in tracking.client(ctx).list_artifacts(result["mlflow_run_id"])}
    assert "residuals.png" in names


def assert_fails(step, ctx, out, inputs, *words):
    outputs = out(step)
    with pytest.raises(StepError) as info:
        execute(step, inputs, outputs, ctx)
    for word in (f"step {step.name}", *words):
        assert word in str(info.value), str(info.value)
    assert not any(artifacts.exists(u) for u in outputs.values())


def test_metric_that_does_not_fit_the_model(ctx, out, trained, penguins_split):
    inputs = {"model": trained["outputs"]["model"]["uri"], "data": penguins_split["test"]}
    assert_fails(evaluate(["accuracy", "f1"]), ctx, out, inputs, "f1 needs a binary target", "3 classes")
    assert_fails(evaluate(["rmse"]), ctx, out, inputs, "rmse does not apply to a classification model")


def test_data_without_a_feature(ctx, out, trained, penguins):
    data = f"{ctx.artifact_root}/no_sex.parquet"
    artifacts.write_parquet(penguins.drop(columns="sex").dropna(), data)
    inputs = {"model": trained["outputs"]["model"]["uri"], "data": data}
    assert_fails(evaluate(["accuracy"]), ctx, out, inputs, "feature 'sex' is not in the data")


def test_probability_metric_for_a_model_without_probabilities(ctx, out, penguins):
    data = f"{ctx.artifact_root}/numbers.parquet"
    artifacts.write_parquet(penguins[["species", "bill_length_mm", "flipper_length_mm"]], data)
    # No `features`: every column but the target.
    train = ir.Train(name="svm", data=ir.Ref(step="d"), target="species",
                     estimator=ir.Estimator(name="sklearn.svm.LinearSVC"))
    trained = execute(train, {"data": data}, out(train), ctx)
    assert trained["features"] == ["bill_length_mm", "flipper_length_mm"]
    inputs = {"model": trained["outputs"]["model"]["uri"], "data": data}
    assert_fails(evaluate(["accuracy", "roc_auc"], name="svm_eval"), ctx, out, inputs,
                 "roc_auc needs class probabilities")


def test_a_model_trained_with_missing_target_drop_is_evaluated_on_rows_with_a_target(ctx, out, cars_data):
    """The test split of data with gaps in the target has gaps too: the model's metadata says to
    drop them, and the result counts them."""
    train = ir.Train(name="mpg_model", data=ir.Ref(step="cars"), target="Miles_per_Gallon",
                     features=("Cylinders", "Weight_in_lbs"), missing_target="drop",
                     estimator=ir.Estimator(name="sklearn.linear_model.Ridge"))
    model = execute(train, {"data": cars_data}, out(train), ctx)["outputs"]["model"]["uri"]
    step = evaluate(["rmse", "r2"], name="mpg_eval")
    result = execute(step, {"model": model, "data": cars_data}, out(step), ctx)
    assert result["rows"] == 37 and result["rows_without_target"] == 3 and result["metrics"]["r2"] > 0.5
    assert result["notes"] == [("3 row(s) without a value for the target 'Miles_per_Gallon' left out "
                               "(missing_target = drop in train mpg_model)")]
    assert artifacts.read_json(result["outputs"]["metrics"]["uri"])["rows_without_target"] == 3
    assert len(artifacts.read_parquet(result["outputs"]["predictions"]["uri"])) == 37


def test_a_missing_target_in_evaluation_names_the_train_option(ctx, out, cars_data):
    clean = f"{ctx.artifact_root}/cars/clean.parquet"
    artifacts.write_parquet(artifacts.read_parquet(cars_data).dropna(subset=["Miles_per_Gallon"]), clean)
    train = ir.Train(name="mpg_model", data=ir.Ref(step="cars"), target="Miles_per_Gallon",
                     features=("Cylinders", "Weight_in_lbs"),
                     estimator=ir.Estimator(name="sklearn.linear_model.Ridge"))
    model = execute(train, {"data": clean}, out(train), ctx)["outputs"]["model"]["uri"]
    assert_fails(evaluate(["rmse"], name="mpg_eval"), ctx, out, {"model": model, "data": cars_data},
                 "'Miles_per_Gallon' has 3 missing value(s)", "`missing_target = drop` in the train step mpg_model")


def test_permutation_importance_is_seeded_and_recorded(session_ctx, trained, penguins_split):
    """`importance { repeats = 2  seed = 4 }`: every feature's drop in the first metric, the same
    twice from the same seed, in the Metrics document and as MLflow metrics of both runs."""
    step = evaluate(["accuracy"], name="explained").model_copy(
        update={"importance": ir.Importance(repeats=2, seed=4)})
    inputs = {"model": trained["outputs"]["model"]["uri"], "data": penguins_split["test"]}
    documents = []
    for attempt in ("one", "two"):
        outputs = artifacts.output_uris(f"{session_ctx.artifact_root}/explained-{attempt}", step)
        result = execute(step, inputs, outputs, session_ctx)
        documents.append(artifacts.read_json(outputs["metrics"]))
    found = documents[0]["importance"]
    assert found == documents[1]["importance"]
    assert (found["metric"], found["repeats"], found["seed"]) == ("accuracy", 2, 4)
    assert set(found["features"]) == set(FEATURES)
    assert max(v["mean"] for v in found["features"].values()) > 0.05     # the model relies on something
    client = tracking.client(session_ctx)
    for run_id in (result["mlflow_run_id"], trained["mlflow_run_id"]):
        logged = client.get_run(run_id).data.metrics
        assert logged["importance.bill_length_mm"] == pytest.approx(found["features"]["bill_length_mm"]["mean"])
