"""bench/scale.mlops written by hand in one process: the yardstick for `mlopsc run` at scale in
bench/scale_bench.py.

What a careful engineer writes with pandas, pyarrow, pandera, scikit-learn, scipy and MLflow:
- the same reads: the Parquet table with the filter pushed into the read, the shifted batch;
- the same checks (a pandera schema: 15 column rules, the row count and the expectation);
- the time split (stable sort by event_time, the latest 20% is the test set);
- HistGradientBoostingClassifier (100 iterations, no tuning) on the numbers as they are and ordinal
  codes of the three text columns, marked as categorical features (scikit-learn's recipe for
  native categoricals; the spec's preprocessing block asks the same);
- roc_auc, accuracy and f1 on the test set, the gate (roc_auc >= 0.7), a confusion-matrix figure;
- MLflow: a parent run with a nested run per stage, params, metrics, the datasets as run inputs
  (digest and schema computed cheaply: MLflow's own inference over a whole frame costs seconds
  per million rows, and no careful engineer would wait for it), the model (skops, signature,
  input example), a registered version and the `champion` alias;
- the score of the whole table written to Parquet, and the drift statistics (PSI, KS, chi²) of
  every feature and of the predictions, shifted batch against the training set.
It writes no intermediate dataset: the pipeline's artifacts are mlopsc's cost to measure.

    python bench/baseline_scale.py --data data/events.parquet --shifted data/events_shifted.parquet \
        --store DIR [--stages stages.json]

`--stages` writes [[stage, start, end], ...] (wall clock), for the bench's per-stage table.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

NUMERIC = ["amount"] + [f"x{i:02d}" for i in range(1, 15)]
CATEGORICAL = ["channel", "region", "merchant"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "label"
STAGES: list[list] = []


@contextmanager
def stage(name: str):
    start = time.time()
    yield
    STAGES.append([name, start, time.time()])


def digest_of(df) -> str:
    """The content hash a careful script would record: pandas' row hashes plus names and dtypes."""
    import pandas as pd

    h = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def log_dataset(df, name: str, source: str, context: str, digest: str) -> None:
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    sample = infer_signature(df.head(1000)).inputs
    schema = Schema([ColSpec(spec.type, spec.name, required=not df[spec.name].hasnans)
                     for spec in sample.inputs])
    dataset = mlflow.data.from_pandas(df, source=source, name=name, digest=digest[:16])
    dataset.__dict__["schema"] = schema   # PandasDataset.schema is a cached_property: give its value
    mlflow.log_input(dataset, context=context, tags={"sha256": digest})


def check(df) -> list[str]:
    import pandera.pandas as pa

    between = pa.Check.in_range(-10, 10)
    def nulls(limit: float):
        return pa.Check(lambda s: float(s.isna().mean()) <= limit, ignore_na=False)

    schema = pa.DataFrameSchema({
        "event_time": pa.Column("datetime64[us]", nullable=False),
        "amount": pa.Column(checks=pa.Check.ge(0), nullable=True),
        "x01": pa.Column(checks=between, nullable=True), "x02": pa.Column(checks=between, nullable=True),
        "x03": pa.Column(checks=between, nullable=True), "x04": pa.Column(float, nullable=False),
        "x10": pa.Column(checks=nulls(0.05), nullable=True), "x11": pa.Column(checks=nulls(0.05), nullable=True),
        "x12": pa.Column(checks=nulls(0.05), nullable=True), "x13": pa.Column(checks=nulls(0.08), nullable=True),
        "x14": pa.Column(checks=nulls(0.08), nullable=True),
        "channel": pa.Column(checks=pa.Check.isin(["web", "app", "store", "phone", "partner"]), nullable=True),
        "region": pa.Column(checks=pa.Check.str_matches("^r[0-9][0-9]$"), nullable=True),
        "merchant": pa.Column(str, nullable=False),
        "label": pa.Column(checks=pa.Check.isin([0, 1]), nullable=True),
    }, checks=[pa.Check(lambda d: len(d) >= 1000), pa.Check(lambda d: (d["amount"] < 1_000_000) | (d["x01"] > 0))])
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return sorted(set(exc.failure_cases["check"].astype(str)))
    return []


def psi(ref_counts, cur_counts) -> float:
    total = 0.0
    for r, c in zip(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()):
        r, c = max(r, 1e-4), max(c, 1e-4)
        total += (c - r) * math.log(c / r)
    return total


def drift(ref, cur) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    ref, cur = ref.dropna(), cur.dropna()
    if pd.api.types.is_numeric_dtype(ref):
        r, c = ref.to_numpy(dtype=float), cur.to_numpy(dtype=float)
        edges = np.concatenate([[-np.inf], np.unique(np.quantile(r, np.linspace(0, 1, 11))[1:-1]), [np.inf]])
        ks = ks_2samp(r, c)
        return {"psi": psi(np.histogram(r, edges)[0], np.histogram(c, edges)[0]),
                "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}
    counts = pd.DataFrame({"r": ref.astype(str).value_counts(), "c": cur.astype(str).value_counts()}).fillna(0)
    chi2 = chi2_contingency(counts.T.to_numpy())
    return {"psi": psi(counts["r"].to_numpy(), counts["c"].to_numpy()),
            "chi2_statistic": float(chi2.statistic), "chi2_pvalue": float(chi2.pvalue)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--shifted", required=True)
    parser.add_argument("--store", required=True, help="folder for mlflow.db, its artifacts and the scores")
    parser.add_argument("--stages", help="write the stages' start and end times here (JSON)")
    args = parser.parse_args()

    with stage("imports"):
        import mlflow
        import mlflow.sklearn
        import pandas as pd
        import pyarrow.compute as pc
        import pyarrow.dataset as ds
        import skops.io
        from matplotlib.figure import Figure
        from mlflow.models import infer_signature
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score, roc_auc_score
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OrdinalEncoder

    store = Path(args.store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    with stage("mlflow setup"):
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = mlflow.MlflowClient(uri, registry_uri=uri)
        if mlflow.get_experiment_by_name("scale") is None:
            mlflow.create_experiment("scale", artifact_location=f"file://{store / 'mlartifacts'}")
        mlflow.set_experiment("scale")
        parent = mlflow.start_run(run_name="scale")

    with stage("source"):
        df = pd.read_parquet(args.data, filters=pc.field("amount") > 0)
        with mlflow.start_run(run_name="events", nested=True):
            digest = digest_of(df)
            log_dataset(df, "events", os.path.abspath(args.data), "source", digest)
            mlflow.log_params({"format": "parquet", "rows": len(df), "columns": len(df.columns)})

    with stage("check"):
        failed = check(df)
        with mlflow.start_run(run_name="events_quality", nested=True):
            mlflow.log_metric("expectations_failed", len(failed))
            mlflow.log_dict({"failed": failed}, "check_report.json")
        if failed:
            print("check failed:", failed, file=sys.stderr)
            return 3

    with stage("split"):
        ordered = df.sort_values("event_time", kind="stable")
        n_test = math.ceil(0.2 * len(ordered))
        train, test = ordered.iloc[:-n_test], ordered.iloc[-n_test:]
        del ordered
        with mlflow.start_run(run_name="by_time", nested=True):
            mlflow.log_params({"method": "time", "train_rows": len(train), "test_rows": len(test)})

    with stage("train"):
        X = train[FEATURES]
        # Numbers as they are, text as ordinal codes marked categorical (unknown levels -> -1,
        # which the estimator reads as missing): scikit-learn's recipe, and what the spec asks.
        preprocess = ColumnTransformer([
            ("numeric", "passthrough", NUMERIC),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, max_categories=255),
             CATEGORICAL)])
        codes = list(range(len(NUMERIC), len(FEATURES)))
        model = Pipeline([("preprocess", preprocess), ("estimator", HistGradientBoostingClassifier(
            max_iter=100, random_state=0, categorical_features=codes))])
        model.fit(X, train[TARGET])
        example = X.head(5)
        signature = infer_signature(example, model.predict(example))
        trusted = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
        from importlib.metadata import version as installed

        requirements = [f"{p}=={installed(p)}" for p in ("scikit-learn", "skops", "pandas", "numpy", "mlflow")]
        with mlflow.start_run(run_name="label_model", nested=True) as train_run:
            mlflow.log_params({"estimator": "HistGradientBoostingClassifier", "max_iter": 100, "rows": len(X)})
            log_dataset(train, "by_time.train", "by_time.train", "training", digest_of(train))
            os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"   # MLflow reloads to validate
            info = mlflow.sklearn.log_model(model, name="model", signature=signature, input_example=example,
                                            serialization_format="skops", skops_trusted_types=trusted,
                                            pip_requirements=requirements)
        del X

    with stage("evaluate"):
        proba = model.predict_proba(test[FEATURES])[:, 1]
        predicted = model.classes_[(proba >= 0.5).astype(int)]
        metrics = {"roc_auc": roc_auc_score(test[TARGET], proba), "accuracy": accuracy_score(test[TARGET], predicted),
                   "f1": f1_score(test[TARGET], predicted)}
        figure = Figure(figsize=(6, 5), dpi=100)
        ConfusionMatrixDisplay.from_predictions(test[TARGET], predicted, ax=figure.add_subplot(), colorbar=False)
        with mlflow.start_run(run_name="label_eval", nested=True):
            mlflow.log_metrics(metrics)
            mlflow.log_figure(figure, "confusion_matrix.png")
            log_dataset(test, "by_time.test", "by_time.test", "evaluation", digest_of(test))
        client.log_batch(train_run.info.run_id, metrics=[
            mlflow.entities.Metric(k, v, int(time.time() * 1000), 0) for k, v in metrics.items()])

    with stage("gate"):
        passed = metrics["roc_auc"] >= 0.7
        mlflow.set_tag("gate", "passed" if passed else "failed")
        if not passed:
            return 4

    with stage("deploy"), mlflow.start_run(run_name="label_service", nested=True):
        version = mlflow.register_model(info.model_uri, "scale-label")
        client.set_registered_model_alias("scale-label", "champion", version.version)

    with stage("score"):
        scored = df.copy()
        proba = model.predict_proba(df[FEATURES])
        scored["y_pred"] = model.classes_[proba.argmax(axis=1)]
        for i, label in enumerate(model.classes_):
            scored[f"proba_{label}"] = proba[:, i]
        scored.to_parquet(store / "scores.parquet", index=False)
        with mlflow.start_run(run_name="score_all", nested=True):
            mlflow.log_metric("rows_scored", len(scored))
        del scored, proba

    with stage("monitor"):
        current = ds.dataset(args.shifted).to_table().to_pandas()
        stats = {name: drift(train[name], current[name]) for name in FEATURES}
        stats["prediction"] = drift(*(pd.Series(model.predict(frame[FEATURES])).astype(str)
                                      for frame in (train, current)))
        with mlflow.start_run(run_name="label_drift", nested=True):
            mlflow.log_metrics({f"drift.{f}.{k}": v for f, s in stats.items() for k, v in s.items()})
        fired = [stats["x01"]["psi"] > 0.2, stats["amount"]["ks_pvalue"] < 0.01, stats["channel"]["chi2_pvalue"] < 0.01]

    mlflow.end_run()
    print(f"roc_auc {metrics['roc_auc']:.4f} accuracy {metrics['accuracy']:.4f} f1 {metrics['f1']:.4f}; "
          f"scale-label version {version.version}; drift rules fired: {sum(fired)} ({parent.info.run_id})")
    if args.stages:
        Path(args.stages).write_text(json.dumps(STAGES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
