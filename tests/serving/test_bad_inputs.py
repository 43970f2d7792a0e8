"""Bad input gets a 4xx whose JSON body names the column, what was expected and what was found;
never a 500, and never a call of the model (the batch counter does not move)."""
from __future__ import annotations

import json
import pickle

import httpx
import pytest
from conftest import FEATURES
from prometheus_client.parser import text_string_to_metric_families

GOOD = {"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181.0, "body_mass_g": 3750.0,
        "island": "Torgersen", "sex": "male"}


def records(**change) -> bytes:
    row = {k: v for k, v in {**GOOD, **change}.items() if v != "<drop>"}
    return json.dumps({"dataframe_records": [row]}).encode()


def v2(columns: dict) -> dict:
    return {"inputs": [{"name": name, "shape": [1], "datatype": "BYTES" if name in ("island", "sex") else "FP64",
                        "data": [value]} for name, value in columns.items()]}


# (what, content type, body, status, column, text the found/expected/message holds)
MLFLOW_CASES = [
    ("missing column", "application/json", records(bill_depth_mm="<drop>"), 400, None, "bill_depth_mm"),
    ("text for a number", "application/json", records(body_mass_g="heavy"), 400, "body_mass_g", "heavy"),
    ("number for text", "application/json", records(island=3), 400, "island", "the number 3"),
    ("a list for a value", "application/json", records(sex=["m"]), 400, "sex", "a list"),
    ("a boolean for a number", "application/json", records(bill_length_mm=True), 400, "bill_length_mm", "boolean"),
    ("infinity", "application/json", b'{"dataframe_records": [{"bill_length_mm": Infinity}]}', 400, None,
     "bill_depth_mm"),
    ("not JSON", "application/json", b"{'dataframe_records': nope", 400, None, "JSON"),
    ("JSON but not an object", "application/json", b"[1, 2, 3]", 400, None, "a list"),
    ("no protocol key", "application/json", b'{"rows": []}', 400, None, "rows"),
    ("two protocol keys", "application/json", b'{"instances": [], "inputs": {}}', 400, None, "instances, inputs"),
    ("no rows", "application/json", b'{"dataframe_records": []}', 400, None, "0 rows"),
    ("split rows of the wrong length", "application/json",
     json.dumps({"dataframe_split": {"columns": list(FEATURES), "data": [[1.0]]}}).encode(), 400, None, "1 values"),
    ("unnamed instances", "application/json", b'{"instances": [[1, 2, 3, 4, "a", "b"]]}', 400, None, "unnamed"),
    ("CSV with text for a number", "text/csv",
     b"bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex\n39.1,18.7,long,3750,Biscoe,male\n",
     400, "flipper_length_mm", "long"),
    ("CSV with a short row", "text/csv", b"bill_length_mm,bill_depth_mm\n1\n", 400, None, "1 values"),
    ("a column given twice", "application/json",
     json.dumps({"dataframe_split": {"columns": [*FEATURES, "island"], "data": [[1.0, 2.0, 3.0, 4.0, "a", "b", "c"]]}
                 }).encode(), 400, "island", "twice"),
    ("a CSV column given twice", "text/csv", b"sex,sex\nmale,male\n", 400, "sex", "twice"),
    ("nesting too deep", "application/json", b'{"inputs": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, None,
     "nesting"),
    ("an integer of 5000 digits", "application/json",
     b'{"dataframe_records": [{"bill_length_mm": ' + b"9" * 5000 + b"}]}", 400, None, "JSON"),
    ("an integer beyond float range", "application/json", records(body_mass_g=10**400), 400, "body_mass_g",
     "finite"),
    ("a pickle", "application/octet-stream", pickle.dumps({"x": 1}), 415, None, "application/octet-stream"),
    ("a pickle called JSON", "application/json", pickle.dumps({"x": 1}), 400, None, "JSON"),
    ("no content type", "", b"{}", 415, None, "no Content-Type"),
    ("too large", "application/json", b'{"dataframe_records": [' + b" " * 300_000 + b"]}", 413, None, "bytes"),
]


def batches(server) -> float:
    text = httpx.get(server.url + "/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "mlopsc_batch_size":
            return next(s.value for s in family.samples if s.name.endswith("_count"))
    raise AssertionError("no mlopsc_batch_size in /metrics")


@pytest.mark.parametrize(("what", "content_type", "body", "status", "column", "mentions"), MLFLOW_CASES,
                         ids=[c[0] for c in MLFLOW_CASES])
def test_bad_scoring_requests(server, what, content_type, body, status, column, mentions):
    before = batches(server)
    headers = {"Content-Type": content_type} if content_type else {}
    answer = httpx.post(server.url + "/invocations", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["error_code"] and error["message"]
    if column:
        assert error["column"] == column
    assert mentions in json.dumps(error), error
    assert batches(server) == before     # the model was not called


V2_CASES = [
    ("wrong datatype", {"inputs": v2(GOOD)["inputs"][:4] + [
        {"name": "island", "shape": [1], "datatype": "FP64", "data": [1.0]}, v2(GOOD)["inputs"][5]]},
     "island", "FP64"),
    ("shape and data disagree", {"inputs": [{**v2(GOOD)["inputs"][0], "shape": [2]}] + v2(GOOD)["inputs"][1:]},
     "bill_length_mm", "1 values"),
    ("missing input", {"inputs": v2(GOOD)["inputs"][1:]}, "bill_length_mm", "bill_length_mm"),
    ("text in a number input", {"inputs": [{**v2(GOOD)["inputs"][0], "data": ["long"]}] + v2(GOOD)["inputs"][1:]},
     "bill_length_mm", "long"),
    ("no inputs", {"outputs": []}, None, "inputs"),
]


@pytest.mark.parametrize(("what", "document", "column", "mentions"), V2_CASES, ids=[c[0] for c in V2_CASES])
def test_bad_infer_requests(server, store, what, document, column, mentions):
    before = batches(server)
    answer = httpx.post(f"{server.url}/v2/models/{store.name}/infer", json=document)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]
    if column:
        assert answer.json()["column"] == column
    assert mentions in json.dumps(answer.json())
    assert batches(server) == before


def test_bad_feedback(server):
    for document, mentions in [({"label": "Adelie"}, "request_id"), ({"request_id": 3, "label": "x"}, "the number 3"),
                               ({"request_id": "abc", "label": {"a": 1}}, "an object")]:
        answer = httpx.post(server.url + "/feedback", json=document)
        assert answer.status_code == 400 and mentions in answer.text
