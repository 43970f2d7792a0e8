"""A dataset logged as a run input carries its digest, schema and row count, with the schema
computed from the dtypes and a sample rather than by MLflow testing every value."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mlopsc.compiler import ir
from mlopsc.runtime import tracking


def test_a_logged_dataset_has_mlflows_schema_the_rows_and_our_digest(ctx):
    import mlflow

    n = 3000
    df = pd.DataFrame({"x": np.arange(n, dtype=float), "k": np.arange(n), "s": pd.Series(["a"] * n, dtype="str"),
                       "t": pd.date_range("2024-01-01", periods=n, freq="h")})
    # The same schema as MLflow infers, on a frame MLflow can infer quickly.
    assert tracking.dataset_schema(df).to_dict() == mlflow.data.from_pandas(df).schema.to_dict()
    # A value missing after the sampled rows still makes its column optional.
    df.loc[n - 10, "x"] = np.nan
    df.loc[n - 5, "s"] = None
    step = ir.Source(name="events", format="parquet", path="events.parquet")
    with tracking.step_run(ctx, step) as run:
        tracking.log_dataset(df, "/data/events.parquet", name="events", digest="ab" * 32, context="source")
    (logged,) = mlflow.MlflowClient(ctx.tracking_uri).get_run(run.info.run_id).inputs.dataset_inputs
    schema = {c["name"]: c for c in json.loads(logged.dataset.schema)["mlflow_colspec"]}
    assert {name: (c["type"], c["required"]) for name, c in schema.items()} == {
        "x": ("double", False), "k": ("long", True), "s": ("string", False), "t": ("datetime", True)}
    assert json.loads(logged.dataset.profile) == {"num_rows": n, "num_elements": 4 * n}
    assert logged.dataset.digest == "ab" * 8
    assert {t.key: t.value for t in logged.tags}["mlopsc.sha256"] == "ab" * 32
