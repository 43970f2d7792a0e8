"""The penguins pipeline written by hand with pandas, scikit-learn and MLflow: the yardstick for
`mlopsc run specs/penguins.mlops` in bench/run_speed.py.

It does what the spec asks, the way a careful person would without mlopsc: same data and filter,
the same checks, stratified split (test 0.25, seed 7), the same preprocessing and 300-tree forest
with a 5-fold grid over max_depth, accuracy and f1_macro on the test set, the same gate (threshold
and champion comparison), and the same MLflow logging: a parent run with nested runs per stage,
params, CV scores, dataset inputs, the model (skops, signature, input example), a registered
version and the `champion` alias.

    python bench/baseline_penguins.py --data specs/data/penguins.csv --store DIR
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex"]
NUMERIC, CATEGORICAL = FEATURES[:4], FEATURES[4:]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).parents[1] / "specs" / "data" / "penguins.csv"))
    parser.add_argument("--store", required=True, help="folder for mlflow.db and its artifacts")
    args = parser.parse_args()

    import mlflow
    import mlflow.sklearn
    import pandas as pd
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    store = Path(args.store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    if mlflow.get_experiment_by_name("penguins") is None:
        mlflow.create_experiment("penguins", artifact_location=f"file://{store / 'mlartifacts'}")
    mlflow.set_experiment("penguins")

    with mlflow.start_run(run_name="penguins") as parent:
        mlflow.log_params({"test_size": 0.25, "min_accuracy": 0.90})
        # source
        df = pd.read_csv(args.data).query("year < 2009")
        df.to_parquet(store / "penguins.parquet")
        # check (on_fail = stop)
        problems = []
        if len(df) < 200:
            problems.append(f"rows {len(df)} < 200")
        if not df["species"].isin(["Adelie", "Chinstrap", "Gentoo"]).all():
            problems.append("species outside the allowed values")
        bill = df["bill_length_mm"]
        if bill.isna().mean() > 0.02 or not bill.dropna().between(25, 70).all():
            problems.append("bill_length_mm out of range or too many nulls")
        with mlflow.start_run(run_name="penguins_quality", nested=True):
            mlflow.log_metric("failed_expectations", len(problems))
        if problems:
            print("check failed:", problems, file=sys.stderr)
            return 3
        # split
        train, test = train_test_split(df, test_size=0.25, stratify=df["species"], random_state=7)
        train.to_parquet(store / "train.parquet")
        test.to_parquet(store / "test.parquet")
        # train
        X, y = train[FEATURES].astype({c: "float64" for c in NUMERIC}), train["species"]
        preprocess = ColumnTransformer([
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
            ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                      ("encode", OneHotEncoder(handle_unknown="ignore"))]), CATEGORICAL),
        ])
        pipeline = Pipeline([("preprocess", preprocess),
                             ("estimator", RandomForestClassifier(n_estimators=300, max_depth=6, random_state=0))])
        search = GridSearchCV(pipeline, {"estimator__max_depth": [4, 6, 8]}, scoring="accuracy",
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), refit=True)
        search.fit(X, y)
        model = search.best_estimator_
        example = X.dropna().head(5)
        signature = infer_signature(example, model.predict(example))
        trusted = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
        with mlflow.start_run(run_name="species_model", nested=True):
            mlflow.log_params({"estimator.n_estimators": 300, **search.best_params_})
            mlflow.log_metric("cv_score", search.best_score_)
            mlflow.log_input(mlflow.data.from_pandas(train, name="penguins_split.train", targets="species"),
                             context="training")
            os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"   # MLflow reloads to validate
            # Requirements given, as the runtime gives them: inferring them re-imports the model in
            # a subprocess (seconds), which would flatter mlopsc in the comparison.
            from importlib.metadata import version as installed

            requirements = [f"{p}=={installed(p)}" for p in ("scikit-learn", "skops", "pandas", "numpy", "mlflow")]
            info = mlflow.sklearn.log_model(model, name="model", signature=signature, input_example=example,
                                            serialization_format="skops", skops_trusted_types=trusted,
                                            pip_requirements=requirements)
        # evaluate
        predicted = model.predict(test[FEATURES].astype({c: "float64" for c in NUMERIC}))
        metrics = {"accuracy": accuracy_score(test["species"], predicted),
                   "f1_macro": f1_score(test["species"], predicted, average="macro")}
        with mlflow.start_run(run_name="species_eval", nested=True):
            mlflow.log_metrics(metrics)
        # gate: threshold, and no worse than the champion's f1_macro - 0.01
        passed = metrics["accuracy"] >= 0.90
        try:
            champion = client.get_model_version_by_alias("penguins-species", "champion")
            champion_f1 = float(champion.tags.get("f1_macro", 0.0))
            passed = passed and metrics["f1_macro"] >= champion_f1 - 0.01
        except mlflow.exceptions.MlflowException:
            pass   # no champion: pass
        mlflow.set_tag("gate", "passed" if passed else "failed")
        if not passed:
            return 4
        # deploy
        with mlflow.start_run(run_name="species_service", nested=True):
            version = mlflow.register_model(info.model_uri, "penguins-species")
            client.set_model_version_tag("penguins-species", version.version, "f1_macro", str(metrics["f1_macro"]))
            client.set_registered_model_alias("penguins-species", "champion", version.version)
        print(f"accuracy {metrics['accuracy']:.4f} f1_macro {metrics['f1_macro']:.4f} "
              f"registered penguins-species version {version.version} alias champion ({parent.info.run_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
