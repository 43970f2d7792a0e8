"""The app in-process, with a regressor loaded straight from a fitted Pipeline (no registry): its
answers are the model's, V2 says FP64, the log's `prediction` is float64 with no proba columns,
and /metrics has the histogram of predicted values instead of counts by class."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlopsc.runtime.serving import read_prediction_log
from mlopsc.runtime.serving.app import ServeConfig, create_app
from mlopsc.runtime.serving.model import Feature, LoadedModel
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def regressor():
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = load_diabetes(as_frame=True).frame
    frame["band"] = np.where(frame["bmi"] > 0, "high", "low")
    features = ["age", "bmi", "bp", "band"]
    model = Pipeline([("preprocess", ColumnTransformer([
        ("numeric", SimpleImputer(), ["age", "bmi", "bp"]),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), ["band"])])), ("estimator", Ridge())])
    model.fit(frame[features], frame["target"])
    loaded = LoadedModel(name="diabetes", version="7", model=model, task="regression",
                         features=(Feature("age", "number"), Feature("bmi", "number"), Feature("bp", "number"),
                                   Feature("band", "text")))
    return loaded, frame[features].head(20)


def test_a_regressor_answers_logs_and_counts(regressor, tmp_path):
    loaded, rows = regressor
    config = ServeConfig(model_name="diabetes", tracking_uri="unused", alias=None, version="7",
                         log_uri=str(tmp_path / "log"), poll_interval=0, flush_interval=0.05)
    records = rows.to_dict("records")
    expected = loaded.model.predict(rows)
    with TestClient(create_app(config, loaded)) as client:
        answer = client.post("/invocations", json={"dataframe_records": records})
        assert answer.status_code == 200 and "probabilities" not in answer.json()
        np.testing.assert_allclose(answer.json()["predictions"], expected)
        inputs = [{"name": c, "shape": [len(rows)], "datatype": "BYTES" if c == "band" else "FP32",
                   "data": rows[c].tolist()} for c in rows.columns]
        infer = client.post("/v2/models/diabetes/infer", json={"inputs": inputs}).json()
        assert infer["outputs"][0]["datatype"] == "FP64" and len(infer["outputs"]) == 1
        np.testing.assert_allclose(infer["outputs"][0]["data"], expected)
        many = records * 100        # over 64 KiB: checked on a thread
        large = client.post("/invocations", json={"dataframe_records": many})
        np.testing.assert_allclose(large.json()["predictions"], np.tile(expected, 100))
        bad = client.post("/invocations", json={"dataframe_records": [{**records[0], "band": 1.5}]})
        assert bad.status_code == 400 and bad.json()["column"] == "band"
        metrics = client.get("/metrics").text
        assert f"mlopsc_prediction_value_count {102.0 * len(rows)}" in metrics
        assert "mlopsc_predictions_total{" not in metrics
        assert 'mlopsc_model_info{alias="",name="diabetes",version="7"} 1.0' in metrics
    # leaving the block shut the app down, which writes the log
    logged = read_prediction_log(str(tmp_path / "log"))
    assert len(logged) == 102 * len(rows)
    part = next((tmp_path / "log" / "predictions").glob("part-*.parquet"))
    schema = pq.read_schema(part)
    assert schema.names == ["request_id", "timestamp", "model_name", "model_version", "age", "bmi", "bp", "band",
                            "prediction", "latency_ms"]
    assert schema.field("prediction").type == pa.float64() and schema.field("band").type == pa.string()
    assert set(logged["model_version"]) == {"7"}


def test_feedback_is_refused_when_the_log_is_off(regressor):
    loaded, _ = regressor
    config = ServeConfig(model_name="diabetes", tracking_uri="unused", alias=None, version="7", log_uri=None,
                         poll_interval=0)
    with TestClient(create_app(config, loaded)) as client:
        answer = client.post("/feedback", json={"request_id": "abc", "label": 3.5})
        assert answer.status_code == 409 and "--no-log" in answer.json()["message"]


def test_a_pinned_version_runs_no_watcher(regressor):
    """Without an alias nothing polls the registry (here one that does not exist)."""
    loaded, rows = regressor
    config = ServeConfig(model_name="diabetes", tracking_uri="sqlite:////nonexistent/x.db", alias=None, version="7",
                         log_uri=None, poll_interval=0.01)
    with TestClient(create_app(config, loaded)) as client:
        time.sleep(0.1)
        assert client.post("/invocations", json={"dataframe_records": rows.head(1).to_dict("records")}).status_code == 200
        assert client.app.state.server.watcher is None
