"""The loop `mlopsc serve` closes, with real processes on one machine (issue 10):

1. `mlopsc run` trains and deploys version 1 (on the penguins before 2009);
2. `mlopsc serve SPEC` starts and logs to its default folder;
3. a client sends penguins whose bills are 10 mm longer than any the model saw, the whole time;
4. `mlopsc monitor` reads the served log (`source live { served = species_service }`) and its
   drift rule fires `-> retrain`; the retrain reads the training file, which has meanwhile gained
   the labelled 2009 penguins (with unchanged data a retrain is all cache hits and deploys nothing,
   and says so: tests/local/test_local_monitor.py);
5. the retrain passes the gate and deploys version 2, moving the alias;
6. the running server answers with version 2, and not one request failed throughout.

The second test makes the gate impossible (`--param min_accuracy=1.01`): the retrain stops at the
gate, and the server stays on the version it answered with before.

Both tests share one `mlopsc run`, one server and one client (module fixture `loop`); each judges
the answers from its own start, relative to the version the server answered with then, so they
hold in either order. The one that runs second finds the retrained model and its evaluation in
the cache (same data, same config) and runs only the gate (and the deploy).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import BIN, FEATURES, PENGUINS, Process, free_port, launch, serve_env, wait_ready

SPEC = """\
pipeline loop {
  params {
    min_accuracy: float = 0.8
  }

  source penguins {
    csv = "train.csv"
  }

  split parts from penguins {
    test_size = 0.25
    stratify = species
    seed = 7
  }

  train species_model on parts.train {
    target = species
    features = [bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, island, sex]
    estimator = sklearn.ensemble.RandomForestClassifier { n_estimators = 10  max_depth = 4  random_state = 0 }
  }

  evaluate species_eval {
    model = species_model
    data = parts.test
    metrics = [accuracy]
  }

  gate release on species_eval {
    require accuracy >= params.min_accuracy
  }

  deploy species_service {
    model = species_model
    after = release
    registry = "loop-penguins"
  }

  source live {
    served = species_service
    window = "1h"
  }

  monitor live_drift {
    reference = parts.train
    current = live
    drift psi(bill_length_mm) > 0.2 -> retrain
    latency p99 > 5s -> alert
  }
}
"""


class Traffic(threading.Thread):
    """Sends the shifted rows, one request of two rows at a time, at most five a second until
    stopped; records every status and answering version, and every exception."""

    def __init__(self, url: str, rows: list[dict]) -> None:
        super().__init__(daemon=True)
        self.url, self.rows = url, rows
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stopping.is_set():
                batch = [self.rows[i % len(self.rows)], self.rows[(i + 1) % len(self.rows)]]
                i += 2
                try:
                    answer = client.post("/invocations", json={"dataframe_records": batch})
                    self.answers.append((answer.status_code, answer.headers.get("X-Model-Version")))
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                # Enough to see every swap and fill the log; more would only take the cores from the
                # runs (tests/serving/test_registry_following.py swaps under heavier traffic).
                time.sleep(0.2)

    def versions(self, since: int = 0) -> list[str | None]:
        return [v for _, v in self.answers[since:]]


@dataclass
class Loop:
    folder: Path
    server: Process
    traffic: Traffic


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def mlopsc(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = serve_env()
    # The spec's own store, as a user beside it gets: in-process MLflow calls of earlier tests in
    # this worker (mlflow.set_tracking_uri) leave MLFLOW_TRACKING_URI in os.environ.
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([str(BIN / "mlopsc"), *args], cwd=folder, env=env, capture_output=True, text=True,
                          check=False, timeout=300)


def serve(folder: Path) -> Process:
    port = free_port()
    env = serve_env()
    env.pop("MLFLOW_TRACKING_URI", None)     # the spec's own store, as for `mlopsc run`
    # The alias is polled every 0.5 s: a deploy is seen soon, and the polls cost little CPU.
    return wait_ready(launch([str(BIN / "mlopsc"), "serve", str(folder / "loop.mlops"), "--port", str(port),
                              "--poll-interval", "0.5", "--flush-interval", "0.2"],
                             f"http://127.0.0.1:{port}", folder / "server.out", env))


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """`mlopsc run` deployed version 1, trained on the penguins before 2009; then the labelled 2009
    penguins arrived in the training file, so that a retrain has new data to learn from. One
    `mlopsc serve SPEC` and one client sending the shifted 2009 penguins serve both tests; the
    client has had its first answers logged."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("loop")
    data = pd.read_csv(PENGUINS)
    data[data["year"] < 2009].to_csv(folder / "train.csv", index=False)
    (folder / "loop.mlops").write_text(SPEC)
    done = mlopsc(folder, "run", "loop.mlops")
    assert done.returncode == 0, done.stdout + done.stderr
    data[data["year"] == 2009].to_csv(folder / "train.csv", mode="a", header=False, index=False)
    shifted = data[data["year"] == 2009].dropna().copy()
    shifted["bill_length_mm"] += 10
    server = serve(folder)
    traffic = Traffic(server.url, json.loads(shifted[list(FEATURES)].to_json(orient="records")))
    traffic.start()
    try:
        wait_for(lambda: len(traffic.answers) >= 20, 60, "the first answers")
        time.sleep(0.5)      # the server writes its log every 0.2 s
        yield Loop(folder, server, traffic)
    finally:
        traffic.stopping.set()
        traffic.join(10)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def assert_every_request_answered(traffic: Traffic) -> None:
    assert not traffic.errors, traffic.errors[:3]
    assert {status for status, _ in traffic.answers} == {200}


def test_a_failing_gate_leaves_the_server_on_its_version(loop):
    start = len(loop.traffic.answers)
    version = loop.traffic.versions()[-1]        # "1" when this test runs first
    monitor = mlopsc(loop.folder, "monitor", "loop.mlops", "--json", "--param", "min_accuracy=1.01")
    assert monitor.returncode == 4, monitor.stdout[-3000:] + monitor.stderr[-3000:]   # the gate did not pass
    record = json.loads(monitor.stdout)
    assert record["steps"]["live_drift"]["result"]["retrain"] is True
    retrain = record["retrain"]
    assert retrain["status"] == "failed" and "species_service" not in retrain["ran"]
    assert retrain["outcome"] == "the gate release did not pass: nothing deployed"
    seen = len(loop.traffic.answers)
    # Ten more answers, at most five a second: the server polled the alias at least four times.
    wait_for(lambda: len(loop.traffic.answers) >= seen + 10, 30, "more answers")
    assert_every_request_answered(loop.traffic)
    assert set(loop.traffic.versions(start)) == {version}


def test_drift_in_served_traffic_retrains_and_the_server_follows_to_the_new_version(loop):
    start = len(loop.traffic.answers)
    first = int(loop.traffic.versions()[-1])     # 1 when this test runs first
    monitor = mlopsc(loop.folder, "monitor", "loop.mlops", "--json")
    assert monitor.returncode == 0, monitor.stdout[-3000:] + monitor.stderr[-3000:]
    record = json.loads(monitor.stdout)
    result = record["steps"]["live_drift"]["result"]
    assert result["retrain"] is True and result["reasons"][0].startswith("psi(bill_length_mm) is")
    assert record["steps"]["live"]["result"]["rows"] >= 40
    uri = Path(result["outputs"]["report"]["uri"])
    report = json.loads((uri if uri.is_absolute() else loop.folder / ".mlopsc" / uri).read_text())
    latency = next(r for r in report["rules"] if r.get("kind") == "latency")
    assert latency["evaluated"] and not latency["fired"]
    retrain = record["retrain"]
    assert retrain["status"] == "ok" and "species_service" in retrain["ran"]
    assert retrain["outcome"] == f"deployed loop-penguins version {first + 1} (alias champion)"
    # Generous bounds: failure detectors on a busy machine (the new version loads in the background).
    wait_for(lambda: loop.traffic.versions()[-1] == str(first + 1), 60, f"answers from version {first + 1}")
    seen = len(loop.traffic.answers)
    wait_for(lambda: len(loop.traffic.answers) >= seen + 10, 30, "more answers")
    assert_every_request_answered(loop.traffic)
    versions = [int(v) for v in loop.traffic.versions(start)]
    assert versions[0] == first and versions[-1] == first + 1
    assert versions == sorted(versions), "an answer from the old version came after one from the new"
