"""The runner reads who holds a registry alias without MLflow: from a SQLite store directly, from a
real `mlflow server` over REST. Both readers must agree with MLflow's own client."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlopsc.runtime import registry_lookup
from mlopsc.runtime.state_folder import STATE_FOLDER

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on loopback over a SQLite store in a temp folder: (its URL, the store's URI)."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    database, port = f"sqlite:///{folder / 'mlflow.db'}", _free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}   # it runs uvicorn
    env = {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", database, "--host", "127.0.0.1",
             "--port", str(port), "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (folder / "server.log").read_text()
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("mlflow server did not answer /health:\n" + (folder / "server.log").read_text())
        yield url, database
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def test_rest_and_sqlite_readers_agree_with_mlflow(server):
    import mlflow

    url, database = server
    client = mlflow.MlflowClient(url, registry_uri=url)
    client.create_registered_model("probe-model")
    run = client.create_run("0").info
    source = f"{run.artifact_uri}/model"
    one = client.create_model_version("probe-model", source, run_id=run.run_id, tags={registry_lookup.SHA_TAG: "a" * 64})
    two = client.create_model_version("probe-model", source, run_id=run.run_id)      # by hand: no sha tag
    client.set_registered_model_alias("probe-model", "champion", one.version)
    client.set_registered_model_alias("probe-model", "staging", two.version)

    for uri in (url, database):
        assert registry_lookup.holder(uri, "probe-model", "champion") == {"version": "1", "model_sha256": "a" * 64}
        assert registry_lookup.holder(uri, "probe-model", "staging") == {"version": "2", "model_sha256": None}
        assert registry_lookup.holder(uri, "probe-model", "nobody") is None
        assert registry_lookup.holder(uri, "no-such-model", "champion") is None


def test_a_store_it_cannot_read_is_unavailable_not_empty(tmp_path):
    with pytest.raises(registry_lookup.Unavailable):
        registry_lookup.holder("postgresql://user@localhost/mlflow", "m", "champion")
    with pytest.raises(registry_lookup.Unavailable):    # nothing listens there
        registry_lookup.holder(f"http://127.0.0.1:{_free_port()}", "m", "champion")
    assert registry_lookup.holder(f"sqlite:///{tmp_path / 'absent.db'}", "m", "champion") is None


def test_a_run_against_the_server_reuses_its_gate_after_checking_the_champion_over_rest(server, tmp_path):
    from localrun import HERE, clean_env, copy_project, ran, run_json, statuses

    url, _ = server
    project = copy_project(tmp_path / "p", HERE / "specs" / "quick.mlops")
    spec = project / "quick.mlops"
    rule = "require accuracy >= params.min_accuracy"
    spec.write_text(spec.read_text().replace(rule, rule + "\n    require f1_macro >= champion.f1_macro - 0.01")
                    .replace('"quick-species"', '"served-species"'))
    env = clean_env(MLFLOW_TRACKING_URI=url)
    first = run_json("quick.mlops", cwd=project, env=env)
    assert first["steps"]["species_service"]["result"]["version"] == "1"
    assert registry_lookup.holder(url, "served-species", "champion")["version"] == "1"
    again = run_json("quick.mlops", cwd=project, env=env)
    assert ran(again) == set() and statuses(again)["release"] == "cached"
    assert not (project / STATE_FOLDER / "mlflow.db").exists()      # everything went to the server
