"""The loop `mlopsc serve` closes, with real processes on one machine (issue 10):

1. `mlopsc run` trains and deploys version 1;
2. `mlopsc serve SPEC` starts and logs to its default folder;
3. a client sends penguins whose bills are 10 mm longer than any the model saw, the whole time;
4. `mlopsc monitor` reads the served log (`source live { served = species_service }`) and its
   drift rule fires `-> retrain`; the retrain reads the training file, which has meanwhile gained
   the labelled 2009 penguins (without new data a retrain is all cache hits and deploys nothing);
5. the retrain passes the gate and deploys version 2, moving the alias;
6. the running server answers with version 2, and not one request failed throughout.

The second test makes the gate impossible (`--param min_accuracy=1.01`): the retrain runs and
stops at the gate, and the server stays on the version it started with. Both tests share one
`mlopsc run`, so each counts versions from the one its own server first answered with.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import BIN, FEATURES, PENGUINS, free_port, launch, serve_env, wait_ready

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
    """Sends the shifted rows, one request of two rows at a time, in a loop until stopped; records
    every status and answering version, and every exception."""

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
                time.sleep(0.02)     # ~40 requests a second: leave the cores to the runs

    def versions(self) -> list[str | None]:
        return [v for _, v in self.answers]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def mlopsc(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = serve_env()
    env.pop("MLFLOW_TRACKING_URI", None)     # the spec's own store, as a user beside it gets
    return subprocess.run([str(BIN / "mlopsc"), *args], cwd=folder, env=env, capture_output=True, text=True,
                          check=False, timeout=180)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A folder with the spec and its training data (penguins before 2009), after `mlopsc run`
    deployed version 1; and the shifted 2009 penguins the client will send. The tests share it
    (one `mlopsc run` is a third of their time) and do not depend on their order: each judges
    the versions relative to the one its server started with."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("loop")
    data = pd.read_csv(PENGUINS)
    data[data["year"] < 2009].to_csv(folder / "train.csv", index=False)
    (folder / "loop.mlops").write_text(SPEC)
    done = mlopsc(folder, "run", "loop.mlops")
    assert done.returncode == 0, done.stdout + done.stderr
    shifted = data[data["year"] == 2009].dropna().copy()
    shifted["bill_length_mm"] += 10
    rows = json.loads(shifted[list(FEATURES)].to_json(orient="records"))
    yield folder, rows
    shutil.rmtree(folder, ignore_errors=True)


def serve(folder: Path):
    port = free_port()
    env = serve_env()
    # The spec's own store, as for `mlopsc run` above: in-process MLflow calls of earlier tests in
    # this worker (mlflow.set_tracking_uri) leave MLFLOW_TRACKING_URI in os.environ.
    env.pop("MLFLOW_TRACKING_URI", None)
    return wait_ready(launch([str(BIN / "mlopsc"), "serve", str(folder / "loop.mlops"), "--port", str(port),
                              "--poll-interval", "0.2", "--flush-interval", "0.2"],
                             f"http://127.0.0.1:{port}", folder / "server.out", env))


def new_labelled_data(folder: Path) -> None:
    """Ground truth for 2009 has arrived: the training file gains those penguins."""
    import pandas as pd

    data = pd.read_csv(PENGUINS)
    data[data["year"] == 2009].to_csv(folder / "train.csv", mode="a", header=False, index=False)


def run_loop(folder: Path, rows: list[dict], *monitor_args: str) -> tuple[Traffic, subprocess.CompletedProcess, object]:
    """Serve, send traffic, run the monitor; returns with the traffic still running."""
    server = serve(folder)
    traffic = Traffic(server.url, rows)
    traffic.start()
    wait_for(lambda: len(traffic.answers) >= 60, 30, "the first answers")
    time.sleep(0.5)      # the server writes its log every 0.2 s
    new_labelled_data(folder)
    monitor = mlopsc(folder, "monitor", "loop.mlops", "--json", *monitor_args)
    return traffic, monitor, server


def stop(traffic: Traffic, server) -> None:
    traffic.stopping.set()
    traffic.join(10)
    server.stop()


def test_drift_in_served_traffic_retrains_and_the_server_follows_to_the_new_version(deployed):
    folder, rows = deployed
    traffic, monitor, server = run_loop(folder, rows)
    first = None
    try:
        assert monitor.returncode == 0, monitor.stdout[-3000:] + monitor.stderr[-3000:]
        record = json.loads(monitor.stdout)
        result = record["steps"]["live_drift"]["result"]
        assert result["retrain"] is True and result["reasons"][0].startswith("psi(bill_length_mm) is")
        assert record["steps"]["live"]["result"]["rows"] >= 120
        uri = Path(record["steps"]["live_drift"]["result"]["outputs"]["report"]["uri"])
        report = json.loads((uri if uri.is_absolute() else folder / ".mlopsc" / uri).read_text())
        latency = next(r for r in report["rules"] if r.get("kind") == "latency")
        assert latency["evaluated"] and not latency["fired"]
        assert record["retrain"]["status"] == "ok" and "species_service" in record["retrain"]["ran"]
        first = int(traffic.versions()[0])
        wait_for(lambda: traffic.versions()[-1] == str(first + 1), 20, f"answers from version {first + 1}")
        seen = len(traffic.answers)
        wait_for(lambda: len(traffic.answers) >= seen + 20, 20, "more answers")
    finally:
        stop(traffic, server)
    assert not traffic.errors, traffic.errors[:3]
    assert {status for status, _ in traffic.answers} == {200}
    versions = [int(v) for v in traffic.versions()]
    assert versions[0] == first and versions[-1] == first + 1
    assert versions == sorted(versions), "an answer from the old version came after one from the new"


def test_a_failing_gate_leaves_the_server_on_its_version(deployed):
    folder, rows = deployed
    traffic, monitor, server = run_loop(folder, rows, "--param", "min_accuracy=1.01")
    try:
        assert monitor.returncode == 4, monitor.stdout[-3000:] + monitor.stderr[-3000:]   # the gate did not pass
        record = json.loads(monitor.stdout)
        assert record["steps"]["live_drift"]["result"]["retrain"] is True
        ran = record["retrain"]["ran"]
        assert record["retrain"]["status"] != "ok" and "species_eval" in ran      # it trained and evaluated ...
        assert "release" not in ran and "species_service" not in ran              # ... and the gate stopped it
        seen = len(traffic.answers)
        time.sleep(1.0)      # five polls of the alias
        wait_for(lambda: len(traffic.answers) >= seen + 20, 20, "more answers")
    finally:
        stop(traffic, server)
    assert not traffic.errors, traffic.errors[:3]
    assert {status for status, _ in traffic.answers} == {200}
    assert len(set(traffic.versions())) == 1       # the version it started with (1 when this test runs first)
