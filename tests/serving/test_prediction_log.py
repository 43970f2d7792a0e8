"""The prediction log holds every answered row with the documented schema; feedback is logged; the
writer counts rows it cannot write instead of dropping them silently."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FEATURES
from mlopsc.runtime.serving import read_feedback_log, read_prediction_log
from mlopsc.runtime.serving.model import Feature, LoadedModel
from mlopsc.runtime.serving.prediction_log import PredictionLog, PredictionRows


def logged(log_dir: Path, ids: set[str], timeout: float = 10.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        frame = read_prediction_log(str(log_dir))
        if ids <= set(frame["request_id"]):
            return frame[frame["request_id"].isin(ids)]
        assert time.monotonic() < deadline, f"{len(ids - set(frame['request_id']))} rows never reached the log"
        time.sleep(0.1)


def test_every_answered_row_is_logged_with_the_schema(server, store, rows):
    started = datetime.now(UTC)
    single = [httpx.post(server.url + "/invocations", json={"dataframe_records": [row]},
                         headers={"X-Request-Id": f"log-test-{i}"}) for i, row in enumerate(rows[:5])]
    several = httpx.post(server.url + "/invocations", json={"dataframe_records": rows[5:8]},
                         headers={"X-Request-Id": "log-test-batch"})
    infer = httpx.post(f"{server.url}/v2/models/{store.name}/infer", json={"id": "log-test-v2", "inputs": [
        {"name": c, "shape": [1], "datatype": "BYTES" if c in ("island", "sex") else "FP64", "data": [rows[9][c]]}
        for c in FEATURES]})
    assert all(a.status_code == 200 for a in [*single, several, infer])
    ids = {f"log-test-{i}" for i in range(5)} | {f"log-test-batch/{i}" for i in range(3)} | {"log-test-v2"}
    frame = logged(server.log_dir, ids).set_index("request_id")

    classes = ["Adelie", "Chinstrap", "Gentoo"]
    columns = ["request_id", "timestamp", "model_name", "model_version", *FEATURES, "prediction",
               *[f"proba_{c}" for c in classes], "latency_ms"]
    part = max((server.log_dir / "predictions").glob("part-*.parquet"))
    schema = pq.read_schema(part)
    assert schema.names == columns
    types = {"request_id": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "model_name": pa.string(),
             "model_version": pa.string(), "bill_length_mm": pa.float64(), "island": pa.string(),
             "prediction": pa.string(), "proba_Adelie": pa.float64(), "latency_ms": pa.float64()}
    assert {name: schema.field(name).type for name in types} == types

    for i, answer in enumerate(single):
        row = frame.loc[f"log-test-{i}"]
        assert row["prediction"] == answer.json()["predictions"][0]
        assert row["model_name"] == store.name and row["model_version"] == answer.headers["X-Model-Version"]
        assert row["island"] == rows[i]["island"]
        expected = rows[i]["bill_length_mm"]
        assert (np.isnan(row["bill_length_mm"]) if expected is None else row["bill_length_mm"] == expected)
        assert [row[f"proba_{c}"] for c in classes] == pytest.approx(
            [answer.json()["probabilities"][0][c] for c in classes])
        assert started - timedelta(seconds=1) <= row["timestamp"] <= datetime.now(UTC)
        assert row["latency_ms"] > 0
    assert [frame.loc[f"log-test-batch/{i}", "prediction"] for i in range(3)] == several.json()["predictions"]
    assert frame.loc["log-test-v2", "prediction"] == infer.json()["outputs"][0]["data"][0]
    assert len(read_prediction_log(str(server.log_dir), since=datetime.now(UTC))) == 0
    assert len(read_prediction_log(str(server.log_dir), since=timedelta(minutes=5))) >= len(ids)


def test_feedback_is_logged(server):
    answer = httpx.post(server.url + "/invocations", json={"dataframe_records": []})   # 400, no id needed
    assert answer.status_code == 400
    for document in ({"request_id": "log-test-0", "label": "Adelie"},
                     {"request_id": "log-test-batch", "label": ["Adelie", "Gentoo", "Adelie"]}):
        reply = httpx.post(server.url + "/feedback", json=document)
        assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 10
    while True:
        feedback = read_feedback_log(str(server.log_dir))
        if {"log-test-0", "log-test-batch/2"} <= set(feedback["request_id"]):
            break
        assert time.monotonic() < deadline, "feedback never reached the log"
        time.sleep(0.1)
    labels = dict(zip(feedback["request_id"], feedback["label"]))
    assert labels["log-test-0"] == "Adelie" and labels["log-test-batch/1"] == "Gentoo"
    assert list(feedback.columns) == ["request_id", "label", "timestamp"]


# ---------------------------------------------------------------- the writer alone


MODEL = LoadedModel(name="m", version="1", model=None, features=(Feature("x", "number"), Feature("c", "text")),
                    task="classification", classes=("a", "b"), has_proba=True)


def batch(n: int, start: int = 0) -> PredictionRows:
    frame = pd.DataFrame({"x": np.arange(n, dtype="float64"), "c": ["k"] * n})
    return PredictionRows([f"r{start + i}" for i in range(n)], datetime.now(UTC), MODEL, frame,
                          np.array(["a"] * n), np.full((n, 2), 0.5), 1.5)


def test_writer_rolls_parts_by_rows_and_writes_on_close(tmp_path):
    log = PredictionLog(str(tmp_path), flush_interval=0.05, roll_rows=10)
    log.start()
    for i in range(5):
        assert log.add(batch(4, start=4 * i))
        time.sleep(0.1)
    log.close()
    frame = read_prediction_log(str(tmp_path))
    assert list(frame["request_id"]) == [f"r{i}" for i in range(20)]
    parts = sorted((tmp_path / "predictions").glob("part-*.parquet"))
    assert len(parts) >= 2 and all(pq.read_metadata(p).num_rows <= 12 for p in parts)
    assert not list((tmp_path / "predictions").glob(".*"))   # no temporary file left behind


def test_rows_that_cannot_be_logged_are_counted(tmp_path):
    failed: list[tuple[str, int, str]] = []
    written: list[int] = []
    full = PredictionLog(str(tmp_path / "full"), max_pending_rows=5,
                         on_failed=lambda s, n, r: failed.append((s, n, r)))
    assert full.add(batch(4)) and not full.add(batch(4))
    assert failed == [("predictions", 4, "queue_full")]

    blocked = tmp_path / "blocked"
    log = PredictionLog(str(blocked), flush_interval=0.05, on_written=lambda s, n: written.append(n),
                        on_failed=lambda s, n, r: failed.append((s, n, r)))
    log.start()
    (blocked / "predictions").rmdir()
    (blocked / "predictions").write_text("a file where the folder was")
    log.add(batch(3))
    log.close()
    assert ("predictions", 3, "write_error") in failed and not written


def test_the_log_writes_to_any_fsspec_uri():
    uri = f"memory://serving-log-{time.time_ns()}"
    log = PredictionLog(uri, flush_interval=0.05)
    log.start()
    log.add(batch(3))
    log.close()
    frame = read_prediction_log(uri)
    assert list(frame["request_id"]) == ["r0", "r1", "r2"] and list(frame["proba_a"]) == [0.5] * 3
