"""/metrics moves with traffic, and concurrent requests are batched, each answered with its own rows."""
from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pandas as pd
from conftest import FEATURES
from prometheus_client.parser import text_string_to_metric_families


def samples(server) -> dict[tuple[str, tuple], float]:
    text = httpx.get(server.url + "/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, metric: str, **labels) -> float:
    return found.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(server, store, rows):
    before = samples(server)
    with_gap = [{**rows[0], "sex": None}, {**rows[1], "sex": None, "bill_depth_mm": None}]
    answer = httpx.post(server.url + "/invocations", json={"dataframe_records": with_gap})
    assert answer.status_code == 200
    httpx.post(server.url + "/invocations", content=b"nope", headers={"Content-Type": "application/json"})
    after = samples(server)
    assert value(after, "mlopsc_requests_total", endpoint="/invocations", status="200") == \
        value(before, "mlopsc_requests_total", endpoint="/invocations", status="200") + 1
    assert value(after, "mlopsc_requests_total", endpoint="/invocations", status="400") == \
        value(before, "mlopsc_requests_total", endpoint="/invocations", status="400") + 1
    assert value(after, "mlopsc_request_duration_seconds_count", endpoint="/invocations") == \
        value(before, "mlopsc_request_duration_seconds_count", endpoint="/invocations") + 2
    assert value(after, "mlopsc_missing_values_total", feature="sex") == \
        value(before, "mlopsc_missing_values_total", feature="sex") + 2
    assert value(after, "mlopsc_missing_values_total", feature="bill_depth_mm") == \
        value(before, "mlopsc_missing_values_total", feature="bill_depth_mm") + 1
    predicted = answer.json()["predictions"]
    for cls in set(predicted):
        assert value(after, "mlopsc_predictions_total", **{"class": cls}) == \
            value(before, "mlopsc_predictions_total", **{"class": cls}) + predicted.count(cls)
    assert value(after, "mlopsc_batch_size_sum") == value(before, "mlopsc_batch_size_sum") + 2
    version = answer.headers["X-Model-Version"]
    assert value(after, "mlopsc_model_info", name=store.name, version=version, alias="champion") == 1
    assert ("mlopsc_requests_in_flight", (("endpoint", "/invocations"),)) in after
    assert value(after, "mlopsc_model_reloads_total", result="failure") >= 0
    deadline = time.monotonic() + 5     # the log writes every 0.2 s
    while value(after, "mlopsc_prediction_log_rows_written_total", stream="predictions") < 2:
        assert time.monotonic() < deadline, "the log wrote no rows"
        time.sleep(0.1)
        after = samples(server)


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(server, local_models, rows):
    before = samples(server)
    records = rows[:48]

    async def send_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/invocations", json={"dataframe_records": [r]})
                                          for r in records))

    answers = asyncio.run(send_all())
    assert all(a.status_code == 200 for a in answers)
    for answer, record in zip(answers, records):
        model = local_models[answer.headers["X-Model-Version"]]
        frame = pd.DataFrame([record], columns=list(FEATURES)).astype({c: "float64" for c in FEATURES[:4]})
        assert answer.json()["predictions"] == list(model.predict(frame))
        np.testing.assert_allclose(list(answer.json()["probabilities"][0].values()), model.predict_proba(frame)[0])
    after = samples(server)
    calls = value(after, "mlopsc_batch_requests_count") - value(before, "mlopsc_batch_requests_count")
    answered = value(after, "mlopsc_batch_requests_sum") - value(before, "mlopsc_batch_requests_sum")
    assert answered == len(records)
    assert calls < len(records), "48 concurrent requests were answered by 48 separate predict calls"
