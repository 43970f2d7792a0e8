"""Real Prefect for the Prefect backend's tests: one `prefect server start` on loopback for the
session (starting one costs 10-20 s here), and a process worker polling a work pool on it.

Everything lives in temp folders: PREFECT_HOME (the server's SQLite database), the MLflow store,
the artifact storage. Teardown stops the worker first, then the server (NOTES.md: a worker whose
server is gone ignores SIGTERM), each with SIGTERM, then SIGKILL of its process group after a
short timeout.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPECS = sorted((ROOT / "specs").glob("*.mlops"))
POOL = "mlopsc-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(home: Path) -> dict[str, str]:
    """This process's environment without any Prefect or MLflow setting of the machine's user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "MLOPSC_"))}
    env.update(
        PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_LOGGING_COLORS="false", PREFECT_CLI_COLORS="false", PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after `timeout`."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=timeout)


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer {url}/health in {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class PrefectServer:
    api_url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {**base_env(self.home), "PREFECT_API_URL": self.api_url, **extra}


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=base_env(home), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(api_url, process, log)
        yield PrefectServer(api_url=api_url, home=home)
    finally:
        stop(process)


@dataclass
class PrefectWorker:
    pool: str
    env: dict[str, str]        # what flow runs started by the worker see
    mlflow_uri: str
    storage: Path
    log: Path


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


# ---------------------------------------------------------------- specs and their data


@pytest.fixture(scope="session")
def spec_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment the example specs need: WINE_DB_URL for the SQL example, built from
    specs/data/make_data.py into a temp folder."""
    env: dict[str, str] = {}
    maker = ROOT / "specs" / "data" / "make_data.py"
    if maker.is_file():
        folder = tmp_path_factory.mktemp("spec-data")
        subprocess.run([sys.executable, str(maker), "--out", str(folder)], check=True, capture_output=True,
                       timeout=300, cwd=folder)
        db = next(folder.glob("**/*.db"), None)
        if db is not None:
            env["WINE_DB_URL"] = f"sqlite:///{db}"
    return env


def copy_spec(spec: Path, dest: Path) -> Path:
    """The spec and its data folder in `dest`, so that runs leave nothing in the repository."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(spec, dest / spec.name)
    if (spec.parent / "data").is_dir():
        shutil.copytree(spec.parent / "data", dest / "data", dirs_exist_ok=True)
    return dest / spec.name


def mlopsc(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlopsc"), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=timeout)


def read_json(path: Path):
    return json.loads(path.read_text())
