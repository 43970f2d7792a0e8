"""Two servers of their own (they are stopped by the tests): one started from a spec, guarded by a
bearer token, stopped with SIGTERM, which must flush every answered row; one killed with SIGKILL,
which may lose at most the rows of the last flush interval."""
from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from conftest import KILL_FLUSH_INTERVAL, TOKEN, wait_ready
from mlopsc.runtime.serving import read_prediction_log

WRITE_SLACK = 1.0      # the duration of one write of the log, generously: the machine may be busy


@pytest.fixture(scope="module")
def servers(launched):
    """(the server started from a spec with a token, the server to kill -9)"""
    return wait_ready(launched["spec"]), wait_ready(launched["kill"])


def test_the_token_guards_predictions_and_feedback(servers, store, rows):
    server, _ = servers
    body = {"dataframe_records": rows[:1]}
    assert httpx.post(server.url + "/invocations", json=body).status_code == 401
    wrong = httpx.post(server.url + "/invocations", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.post(server.url + "/feedback", json={"request_id": "a", "label": "b"}).status_code == 401
    assert httpx.post(f"{server.url}/v2/models/{store.name}/infer", json={"inputs": []}).status_code == 401
    assert httpx.get(server.url + "/ping").status_code == 200       # health and metrics stay open
    assert httpx.get(server.url + "/metrics").status_code == 200
    ok = httpx.post(server.url + "/invocations", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_sigterm_flushes_every_answered_row(servers, rows):
    server, _ = servers
    headers = {"Authorization": f"Bearer {TOKEN}"}
    ids = []
    with httpx.Client(base_url=server.url, headers=headers) as client:
        for i in range(40):
            answer = client.post("/invocations", json={"dataframe_records": [rows[i % len(rows)]]},
                                 headers={"X-Request-Id": f"term-{i}"})
            assert answer.status_code == 200
            ids.append(f"term-{i}")
    server.proc.send_signal(signal.SIGTERM)      # within the 1 s flush interval of the last answers
    # uvicorn shuts down gracefully, then re-raises the signal: the status is SIGTERM's own.
    assert server.proc.wait(30) in (0, -signal.SIGTERM), server.text()[-2000:]
    assert "stopped; the prediction log is flushed" in server.text()
    logged = set(read_prediction_log(str(server.log_dir))["request_id"])
    assert set(ids) <= logged, f"{len(set(ids) - logged)} of 40 rows lost on SIGTERM"


def test_kill_9_loses_at_most_the_last_flush_interval(servers, rows):
    _, server = servers
    answered: list[tuple[str, float]] = []
    stop = threading.Event()

    def send(client_number: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            i = 0
            while not stop.is_set():
                request_id = f"kill-{client_number}-{i}"
                try:
                    answer = client.post("/invocations", json={"dataframe_records": [rows[i % len(rows)]]},
                                         headers={"X-Request-Id": request_id})
                except httpx.HTTPError:
                    return
                if answer.status_code == 200:
                    answered.append((request_id, time.monotonic()))
                i += 1

    senders = [threading.Thread(target=send, args=(n,), daemon=True) for n in range(4)]
    for sender in senders:
        sender.start()
    time.sleep(2.5)
    killed_at = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    stop.set()
    for sender in senders:
        sender.join(10)
    logged = set(read_prediction_log(str(server.log_dir))["request_id"])
    old_enough = [rid for rid, at in answered if at < killed_at - KILL_FLUSH_INTERVAL - WRITE_SLACK]
    assert len(old_enough) >= 10, "too few requests were answered to test anything"
    lost = [rid for rid in old_enough if rid not in logged]
    assert not lost, f"{len(lost)} rows answered more than a flush interval before the kill are not in the log"
    assert logged <= {rid for rid, _ in answered}     # nothing half-written or invented
