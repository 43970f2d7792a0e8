"""Real Prefect for the Prefect backend's tests: one `prefect server start` on loopback for the
session (starting one costs 10-20 s here), and a process worker polling a work pool on it.

Everything lives in temp folders: PREFECT_HOME (the server's SQLite database), the MLflow store, the
artifact storage. The server's scheduler is off: the examples' cron schedules (the penguins
monitor's is hourly) would otherwise start runs on the session's worker whenever the clock passes
their time, and a run the test did not start would change what it counts (runs, model versions).
Teardown stops the worker first, then the server (NOTES.md: a worker whose server is gone ignores
SIGTERM), each with SIGTERM, then SIGKILL of its process group after a short timeout.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from prefect_harness import (
    BIN,
    POOL,
    ROOT,
    PrefectServer,
    PrefectWorker,
    base_env,
    free_port,
    stop,
    wait_healthy,
)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**base_env(home), "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(api_url, process, log)
        yield PrefectServer(api_url=api_url, home=home)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def prefect_worker(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory):
    """A process worker polling POOL. Its flow runs use their own MLflow store and storage."""
    folder = tmp_path_factory.mktemp("prefect-worker")
    mlflow_uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = prefect_server.env(MLFLOW_TRACKING_URI=mlflow_uri, MLOPSC_STORAGE=str(folder / "artifacts"),
                             PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="2")
    subprocess.run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process", "--overwrite"],
                   env=env, check=True, capture_output=True, timeout=120)
    log = folder / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
                                   env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield PrefectWorker(pool=POOL, env=env, mlflow_uri=mlflow_uri, storage=folder / "artifacts", log=log)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def spec_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment the example specs need: WINE_DB_URL for the SQL example, a SQLite file built
    by a copy of specs/data/make_data.py in a temp folder (the copy writes nothing in the repo)."""
    folder = tmp_path_factory.mktemp("spec-data")
    maker = shutil.copy(ROOT / "specs" / "data" / "make_data.py", folder / "make_data.py")
    db = folder / "wine.db"
    subprocess.run([sys.executable, str(maker), "--wine-db", str(db)], check=True, capture_output=True,
                   timeout=300, cwd=folder)
    return {"WINE_DB_URL": f"sqlite:///{db}"}
