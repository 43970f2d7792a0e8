"""Shared fixtures of the server tests: one MLflow SQLite store with one registered penguins model
(trained and deployed by the real runtime stages), one `mlopsc serve` process for the session, and
helpers to start more servers (SIGTERM / kill -9 tests) that always die with the test run.

Every server process is started with PR_SET_PDEATHSIG (SIGTERM when pytest dies, even by kill -9)
and is stopped by a finalizer: SIGTERM, then SIGKILL after a timeout.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PENGUINS = REPO / "specs" / "data" / "penguins.csv"
FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex")
BIN = Path(sys.executable).parent
START_TIMEOUT = 240.0   # a failure detector only: four servers start at once on a machine that may be busy


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel to SIGTERM us when the test process dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    proc: subprocess.Popen
    url: str
    output: Path

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""


def launch(args: list[str], url: str, output: Path, env: dict[str, str] | None = None) -> Process:
    """Start a server process that dies with the test run; does not wait for it."""
    handle = open(output, "wb")   # noqa: SIM115 - the child writes to it for its whole life
    proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env or os.environ.copy(),
                            preexec_fn=_die_with_parent, cwd=output.parent)  # noqa: PLW1509 - prctl only
    return Process(proc, url, output)


def wait_ready(process: Process, ready_path: str = "/ping", timeout: float = START_TIMEOUT) -> Process:
    """Wait until `ready_path` answers 200; raises with the process's output if it does not."""
    import httpx

    name = Path(process.proc.args[0]).name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.proc.returncode}:\n{process.text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(process.url + ready_path, timeout=1.0).status_code == 200:
                return process
        time.sleep(0.1)
    process.stop()
    raise TimeoutError(f"{name} did not answer {ready_path} within {timeout:.0f} s:\n{process.text()[-3000:]}")


@dataclass
class Store:
    uri: str
    name: str
    root: Path
    models: dict[str, str]        # version -> local model folder (what the registry holds)
    broken_source: str            # a model folder whose model file does not load


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Iterator[Store]:
    """Version 1 (a small forest) holds `champion`, version 2 (a depth-2 tree) holds `candidate`."""
    import pandas as pd
    from mlopsc.compiler import ir
    from mlopsc.runtime import RunContext, artifacts, execute, tracking

    root = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ctx = RunContext(pipeline="serving", run_id=uuid.uuid4().hex[:12], spec_path=str(root / "spec.mlops"),
                     spec_hash="test", tracking_uri=uri, artifact_root=str(root / "artifacts"))
    ctx.parent_run_id = tracking.start_pipeline_run(ctx)
    data = str(root / "train.parquet")
    artifacts.write_parquet(pd.read_csv(PENGUINS).query("year < 2009").reset_index(drop=True), data)
    name = f"penguins-{uuid.uuid4().hex[:6]}"
    models = {}
    estimators = {"1": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 15, "max_depth": 4}, "champion"),
                  "2": ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 2}, "candidate")}
    for version, (estimator, params, alias) in estimators.items():
        train = ir.Train(name=f"model{version}", data=ir.Ref(step="penguins"), target="species",
                         features=FEATURES, estimator=ir.Estimator(name=estimator, params=params))
        folder = str(root / f"model{version}")
        execute(train, {"data": data}, {"model": folder}, ctx)
        deploy = ir.Deploy(name="service", model=ir.Ref(step=train.name), registry=name, alias=alias)
        result = execute(deploy, {"model": folder}, {"release": str(root / f"release{version}.json")}, ctx)
        assert result["version"] == version
        models[version] = folder
    broken = root / "broken_model"
    broken.mkdir()
    (broken / "MLmodel").write_text((Path(models["1"]) / "MLmodel").read_text())
    for file in Path(models["1"]).iterdir():
        if file.suffix == ".skops":
            (broken / file.name).write_bytes(b"not a model")
    tracking.end_pipeline_run(ctx, "ok")
    yield Store(uri, name, root, models, str(broken))


def serve_args(store: Store, port: int, log_dir: Path, *extra: str, alias: str = "champion") -> list[str]:
    return [str(BIN / "mlopsc"), "serve", "--model", f"{store.name}@{alias}", "--tracking-uri", store.uri,
            "--port", str(port), "--log", str(log_dir), *extra]


def serve_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


TOKEN = "s3cret-token"          # the spec-started server's bearer token
KILL_FLUSH_INTERVAL = 0.5       # the flush interval of the server that test_shutdown kills -9
LOAD_ALIAS = "load"             # the alias test_load moves (no other test looks at it)
LOAD_MAX_REQUEST_BYTES = 20_000


def penguins_spec(folder: Path, registry: str, port: int) -> Path:
    """specs/penguins.mlops deploying to `registry`, with a serving block on `port`."""
    spec = (REPO / "specs" / "penguins.mlops").read_text()
    spec = spec.replace('"data/penguins.csv"', f'"{REPO / "specs" / "data" / "penguins.csv"}"')
    spec = spec.replace('registry = "penguins-species"',
                        f'registry = "{registry}"\n    serving {{ port = {port}  max_batch_size = 8 }}')
    (folder / "penguins.mlops").write_text(spec)
    return folder / "penguins.mlops"


@pytest.fixture(scope="session")
def launched(store, tmp_path_factory) -> Iterator[dict[str, Process]]:
    """Every server process of the session, launched at once: starting one is mostly imports and
    loading a model, which overlap. The fixtures below wait for the one they hand out.

    - session: `mlopsc serve --model`, polls the alias and writes its log every 0.2 s;
    - mlflow: `mlflow models serve` of version 1, with the venv's bin/ on PATH (it runs uvicorn);
    - spec, kill: test_shutdown's own, stopped by SIGTERM and kill -9 there;
    - load: test_load's own, following `@load` (version 1 at first) every 0.1 s."""
    from mlopsc.runtime import registry

    folder = tmp_path_factory.mktemp("servers")
    ports = {name: free_port() for name in ("session", "mlflow", "spec", "kill", "load")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    processes = {}
    try:
        processes["session"] = launch(
            serve_args(store, ports["session"], folder / "session-log", "--poll-interval", "0.2",
                       "--flush-interval", "0.2", "--max-request-bytes", "200000"),
            url["session"], folder / "session.out", serve_env())
        processes["session"].log_dir = folder / "session-log"
        processes["mlflow"] = launch(
            [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{store.name}/1", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(ports["mlflow"])],
            url["mlflow"], folder / "mlflow.out",
            serve_env(MLFLOW_TRACKING_URI=store.uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true"))
        spec_folder = folder / "spec"
        spec_folder.mkdir()
        spec = penguins_spec(spec_folder, store.name, ports["spec"])
        processes["spec"] = launch(
            [str(BIN / "mlopsc"), "serve", str(spec), "--token-env", "SERVE_TOKEN", "--poll-interval", "0",
             "--flush-interval", "1.0"],
            url["spec"], spec_folder / "spec.out", serve_env(MLFLOW_TRACKING_URI=store.uri, SERVE_TOKEN=TOKEN))
        processes["spec"].log_dir = spec_folder / ".mlopsc" / "serving" / store.name
        processes["kill"] = launch(
            serve_args(store, ports["kill"], folder / "kill-log", "--poll-interval", "0",
                       "--flush-interval", str(KILL_FLUSH_INTERVAL)),
            url["kill"], folder / "kill.out", serve_env())
        processes["kill"].log_dir = folder / "kill-log"
        registry.client(store.uri).set_registered_model_alias(store.name, LOAD_ALIAS, "1")
        processes["load"] = launch(
            serve_args(store, ports["load"], folder / "load-log", "--poll-interval", "0.1", "--flush-interval", "0.2",
                       "--max-request-bytes", str(LOAD_MAX_REQUEST_BYTES), alias=LOAD_ALIAS),
            url["load"], folder / "load.out", serve_env())
        processes["load"].log_dir = folder / "load-log"
        yield processes
    finally:
        for process in processes.values():
            process.stop()


@pytest.fixture(scope="session")
def server(launched) -> Process:
    """The session's `mlopsc serve`."""
    return wait_ready(launched["session"])


@pytest.fixture(scope="session")
def local_models(store):
    """version -> the sklearn model loaded from its folder, to compare the server's answers with."""
    from mlopsc.runtime import artifacts

    return {version: artifacts.load_model(folder) for version, folder in store.models.items()}


@pytest.fixture(scope="session")
def rows():
    """Penguins from 2009 (not trained on), with their missing values, as JSON records."""
    import pandas as pd

    frame = pd.read_csv(PENGUINS).query("year == 2009").reset_index(drop=True)[list(FEATURES)]
    return [{k: (None if pd.isna(v) else v) for k, v in record.items()} for record in frame.to_dict("records")]
