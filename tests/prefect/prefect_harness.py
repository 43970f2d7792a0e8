"""Helpers of the Prefect backend tests: free ports, clean environments, stopping process groups,
running a generated flow in a fresh interpreter, and reading the Prefect REST API."""
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

from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPECS = specs_in(ROOT / "specs")
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


@dataclass
class PrefectWorker:
    pool: str
    env: dict[str, str]        # what flow runs started by the worker see
    mlflow_uri: str
    storage: Path
    log: Path


# ---------------------------------------------------------------- specs and their data


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


# ---------------------------------------------------------------- running generated flows

DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import flows
state = getattr(flows, sys.argv[2])(return_state=True, **json.loads(sys.argv[3]))
summary = state.result(raise_on_failure=False)
with open(sys.argv[4], "w") as fh:
    json.dump({"state": state.name, "type": state.type.value, "message": state.message,
               "flow_run_id": str(state.state_details.flow_run_id),
               "summary": summary if isinstance(summary, dict) else None}, fh, default=str)
"""


def run_flow(build_dir: Path, function: str, env: dict[str, str], params: dict | None = None,
             timeout: float = 600) -> dict:
    """Call a generated flow in a fresh interpreter (as a worker's flow run would) and return its
    final state's name, type, message, flow run id and the run summary it returned."""
    out = build_dir / f"{function}-{time.monotonic_ns()}.json"
    result = subprocess.run([sys.executable, "-c", DRIVER, str(build_dir), function, json.dumps(params or {}),
                             str(out)], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.is_file(), f"the flow did not finish:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return {**read_json(out), "output": result.stdout + result.stderr}


def api(server: PrefectServer, method: str, path: str, body: dict | None = None):
    """One call of the Prefect REST API (what the UI and the CLI use)."""
    request = urllib.request.Request(f"{server.api_url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def flow_run_logs(server: PrefectServer, flow_run_id: str) -> str:
    logs = api(server, "POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
    return "\n".join(entry["message"] for entry in logs)
