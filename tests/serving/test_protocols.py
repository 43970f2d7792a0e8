"""Both protocols answer what the model answers; MLflow's scoring server answers the same payloads
the same way; every kind of bad input gets a 4xx naming what was wrong, and never reaches the model."""
from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, wait_ready


def expected(local_models, version: str, records: list[dict]):
    model = local_models[version]
    frame = pd.DataFrame(records, columns=list(FEATURES)).astype({c: "float64" for c in FEATURES[:4]})
    return list(model.predict(frame)), model.predict_proba(frame), [str(c) for c in model.classes_]


def payloads(records: list[dict]) -> dict[str, tuple[str, bytes]]:
    """The same rows in every form MLflow's scoring protocol takes."""
    frame = pd.DataFrame(records, columns=list(FEATURES))
    split = {"columns": list(FEATURES), "data": [[r[c] for c in FEATURES] for r in records]}
    csv = io.StringIO()
    frame.to_csv(csv, index=False)
    return {
        "dataframe_split": ("application/json", json.dumps({"dataframe_split": split}).encode()),
        "dataframe_records": ("application/json", json.dumps({"dataframe_records": records}).encode()),
        "instances": ("application/json", json.dumps({"instances": records}).encode()),
        "inputs": ("application/json", json.dumps({"inputs": {c: [r[c] for r in records] for c in FEATURES}}).encode()),
        "csv": ("text/csv", csv.getvalue().encode()),
    }


def test_every_mlflow_payload_answers_what_the_model_answers(server, local_models, rows):
    records = rows[:40]
    for form, (content_type, body) in payloads(records).items():
        answer = httpx.post(server.url + "/invocations", content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 200, (form, answer.text)
        version = answer.headers["X-Model-Version"]
        predictions, proba, classes = expected(local_models, version, records)
        assert answer.json()["predictions"] == predictions, form
        got = [[p[c] for c in classes] for p in answer.json()["probabilities"]]
        np.testing.assert_allclose(got, proba, err_msg=form)
        assert answer.headers["X-Request-Id"]


def v2_inputs(records: list[dict]) -> list[dict]:
    return [{"name": c, "shape": [len(records)], "datatype": "BYTES" if c in ("island", "sex") else "FP64",
             "data": [r[c] for r in records]} for c in FEATURES]


def test_v2_infer_answers_what_the_model_answers(server, store, local_models, rows):
    records = rows[:25]
    inputs = v2_inputs(records)
    # A V2 body is JSON whatever its Content-Type says: `curl -d` sends a form type.
    answer = httpx.post(f"{server.url}/v2/models/{store.name}/infer",
                        content=json.dumps({"id": "req-1", "inputs": inputs}).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    predictions, proba, classes = expected(local_models, body["model_version"], records)
    assert body["model_name"] == store.name and body["id"] == "req-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["data"] == predictions and outputs["predict"]["shape"] == [25]
    assert outputs["predict_proba"]["shape"] == [25, len(classes)]
    assert outputs["predict_proba"]["parameters"]["classes"] == classes
    assert outputs["predict_proba"]["data"] == pytest.approx(proba.ravel().tolist())


def test_v2_health_and_metadata(server, store):
    assert httpx.get(server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(server.url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2/models/{store.name}/ready").json()["ready"] is True
    meta = httpx.get(f"{server.url}/v2/models/{store.name}").json()
    assert [i["name"] for i in meta["inputs"]] == list(FEATURES)
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["island"] == "BYTES"
    missing = httpx.get(f"{server.url}/v2/models/nope")
    assert missing.status_code == 404 and missing.json()["expected"] == store.name


def test_v2_versioned_routes_answer_for_the_served_version_only(server, store, rows):
    served = httpx.get(server.url + "/version").json()["model_version"]
    base = f"{server.url}/v2/models/{store.name}/versions"
    assert httpx.get(f"{base}/{served}").json()["versions"] == [served]
    assert httpx.get(f"{base}/{served}/ready").json() == {"name": store.name, "version": served, "ready": True}
    answer = httpx.post(f"{base}/{served}/infer", json={"inputs": v2_inputs(rows[:3])})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == answer.headers["X-Model-Version"] == served
    for method, path in (("GET", ""), ("GET", "/ready"), ("POST", "/infer")):
        other = httpx.request(method, f"{base}/999{path}", json={"inputs": v2_inputs(rows[:3])})
        assert other.status_code == 404, (path, other.text)
        assert other.json() == {"error": f"version 999 of model {store.name!r} is not served here (version "
                                         f"{served} is)", "expected": served, "found": "999"}


def test_ping_health_version(server, store):
    assert httpx.get(server.url + "/ping").status_code == 200
    assert httpx.get(server.url + "/health").status_code == 200
    version = httpx.get(server.url + "/version")
    assert version.json()["model_name"] == store.name
    assert version.json()["model_version"] == version.headers["X-Model-Version"]


@pytest.fixture(scope="session")
def mlflow_server(launched):
    """`mlflow models serve` of version 1, if it starts (within START_TIMEOUT); else the test is skipped."""
    try:
        return wait_ready(launched["mlflow"])
    except (RuntimeError, TimeoutError) as exc:
        pytest.skip(f"mlflow models serve did not start, so there is nothing to compare with: {exc}")


def test_mlflow_scoring_server_gives_the_same_answers(server, mlflow_server, rows):
    version = httpx.get(server.url + "/version").json()["model_version"]
    if version != "1":
        pytest.skip(f"the session server moved on to version {version}; mlflow serves version 1")
    records = rows[:30]
    for form, (content_type, body) in payloads(records).items():
        ours = httpx.post(server.url + "/invocations", content=body, headers={"Content-Type": content_type})
        theirs = httpx.post(mlflow_server.url + "/invocations", content=body,
                            headers={"Content-Type": content_type}, timeout=30)
        assert theirs.status_code == 200, (form, theirs.text)
        assert ours.json()["predictions"] == theirs.json()["predictions"], form
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        ours = httpx.post(server.url + "/invocations", content=b"x", headers={"Content-Type": content_type})
        theirs = httpx.post(mlflow_server.url + "/invocations", content=b"x", headers={"Content-Type": content_type})
        assert ours.status_code == theirs.status_code == 415
