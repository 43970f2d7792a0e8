"""Two servers of their own (they are stopped by the tests): one started from a spec, guarded by a
bearer token, stopped with SIGTERM, which must flush every answered row; one killed with SIGKILL,
which may lose at most the rows of the last flush interval."""
from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from conftest import BIN, REPO, free_port, launch, serve_args, serve_env, wait_ready
from mlopsc.runtime.serving import read_prediction_log

TOKEN = "s3cret-token"
FLUSH_INTERVAL = 0.5
WRITE_SLACK = 0.5      # the duration of one write of the log, generously, on a busy machine


@pytest.fixture(scope="module")
def servers(store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shutdown")
    spec_port, plain_port = free_port(), free_port()
    spec = (REPO / "specs" / "penguins.mlops").read_text()
    spec = spec.replace('"data/penguins.csv"', f'"{REPO / "specs" / "data" / "penguins.csv"}"')
    spec = spec.replace('registry = "penguins-species"',
                        f'registry = "{store.name}"\n    serving {{ port = {spec_port}  max_batch_size = 8 }}')
    (folder / "penguins.mlops").write_text(spec)
    from_spec = launch([str(BIN / "mlopsc"), "serve", str(folder / "penguins.mlops"), "--token-env", "SERVE_TOKEN",
                        "--poll-interval", "0", "--flush-interval", "1.0"],
                       f"http://127.0.0.1:{spec_port}", folder / "spec-server.out",
                       serve_env(MLFLOW_TRACKING_URI=store.uri, SERVE_TOKEN=TOKEN))
    plain = launch(serve_args(store, plain_port, folder / "plain-log", "--poll-interval", "0",
                              "--flush-interval", str(FLUSH_INTERVAL)),
                   f"http://127.0.0.1:{plain_port}", folder / "plain-server.out", serve_env())
    try:
        wait_ready(from_spec)
        wait_ready(plain)
        from_spec.log_dir = folder / ".mlopsc" / "serving" / store.name
        plain.log_dir = folder / "plain-log"
        yield from_spec, plain
    finally:
        from_spec.stop()
        plain.stop()


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

    def send() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            i = 0
            while not stop.is_set():
                try:
                    answer = client.post("/invocations", json={"dataframe_records": [rows[i % len(rows)]]},
                                         headers={"X-Request-Id": f"kill-{i}"})
                except httpx.HTTPError:
                    return
                if answer.status_code == 200:
                    answered.append((f"kill-{i}", time.monotonic()))
                i += 1

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(2.0)
    killed_at = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    stop.set()
    sender.join(10)
    logged = set(read_prediction_log(str(server.log_dir))["request_id"])
    old_enough = [rid for rid, at in answered if at < killed_at - FLUSH_INTERVAL - WRITE_SLACK]
    assert len(old_enough) > 20, "too few requests were answered to test anything"
    lost = [rid for rid in old_enough if rid not in logged]
    assert not lost, f"{len(lost)} rows answered more than a flush interval before the kill are not in the log"
    assert logged <= {rid for rid, _ in answered}     # nothing half-written or invented
