"""`mlopsc submit --target prefect` against a real `prefect server start` and a process worker:
deployments created with their schedules, a run started and followed to the end, a model version
registered; the monitor deployment on drifted data starts a training run. A missing work pool is
created with the type the build assumed; a pool of another type is used with a warning. And the
ways it can go wrong before that: no build, no server, a pool type Prefect has no template for."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from prefect_harness import (
    BIN,
    ROOT,
    PrefectServer,
    PrefectWorker,
    api,
    base_env,
    copy_spec,
    free_port,
    mlopsc,
)

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def penguins_build(tmp_path: Path) -> tuple[Path, Path]:
    spec = copy_spec(ROOT / "specs" / "penguins.mlops", tmp_path / "spec")
    build = tmp_path / "build"
    built = mlopsc("build", str(spec), "--target", "prefect", "-o", str(build), env=base_env(tmp_path))
    assert built.returncode == 0, built.stderr
    return spec, build


def test_unreachable_server_is_one_clear_message(penguins_build, tmp_path: Path) -> None:
    _, build = penguins_build
    url = f"http://127.0.0.1:{free_port()}/api"
    result = mlopsc("submit", str(build), "--target", "prefect", "--api-url", url, env=base_env(tmp_path))
    assert result.returncode == 5
    assert f"cannot reach the Prefect server at {url}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_folder_that_is_no_build_is_a_usage_error(tmp_path: Path) -> None:
    result = mlopsc("submit", str(tmp_path), "--target", "prefect", "--api-url", "http://127.0.0.1:9/api",
                    env=base_env(tmp_path))
    assert result.returncode == 2
    assert "is not a Prefect build" in result.stderr and "Traceback" not in result.stderr


def wait_final(server: PrefectServer, flow_run_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(server, "GET", f"/flow_runs/{flow_run_id}")
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {flow_run_id} did not finish in {timeout} s: {run['state']}")


def flow_runs_of(server: PrefectServer, deployment_id: str) -> list[dict]:
    """The runs of a deployment. None comes from its cron schedule: the test server's scheduler is
    off (conftest.py), so that an hour turning during a test cannot add a run."""
    runs = api(server, "POST", "/flow_runs/filter",
               {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"})
    assert not [r for r in runs if r["auto_scheduled"]], "the test server schedules no runs"
    return runs


def test_submit_run_wait_then_monitor_starts_retraining(penguins_build, prefect_server: PrefectServer,
                                                         prefect_worker: PrefectWorker) -> None:
    from mlflow import MlflowClient

    spec, build = penguins_build
    result = mlopsc("submit", str(build), "--target", "prefect", "--api-url", prefect_server.api_url,
                    "--work-pool", prefect_worker.pool, "--run", "--wait", env=prefect_worker.env)
    worker_log = prefect_worker.log.read_text()[-4000:]
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{worker_log}"
    assert "deployed penguins/penguins on work pool 'mlopsc-test', cron '0 6 * * 1' (UTC)" in result.stdout
    assert "deployed penguins-species_drift/penguins" in result.stdout
    ui = prefect_server.api_url.removesuffix("/api") + "/runs/flow-run/"
    assert ui in result.stdout and "species_model: Completed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

    training = api(prefect_server, "GET", "/deployments/name/penguins/penguins")
    monitor = api(prefect_server, "GET", "/deployments/name/penguins-species_drift/penguins")
    assert [s["schedule"]["cron"] for s in training["schedules"]] == ["0 6 * * 1"]
    assert [s["schedule"]["cron"] for s in monitor["schedules"]] == ["0 * * * *"]
    assert training["work_pool_name"] == prefect_worker.pool
    [first] = flow_runs_of(prefect_server, training["id"])
    assert first["state"]["type"] == "COMPLETED"

    registry = MlflowClient(prefect_worker.mlflow_uri, registry_uri=prefect_worker.mlflow_uri)
    versions = registry.search_model_versions("name='penguins-species'")
    assert len(versions) == 1
    assert registry.get_model_version_by_alias("penguins-species", "champion").version == versions[0].version

    drift_bill_length(spec.parent / "data" / "penguins.csv")
    started = api(prefect_server, "POST", f"/deployments/{monitor['id']}/create_flow_run", {})
    finished = wait_final(prefect_server, started["id"], timeout=300)
    assert finished["state"]["type"] == "COMPLETED", (finished["state"], prefect_worker.log.read_text()[-4000:])

    # The training run this monitor run started.
    retraining = [r for r in flow_runs_of(prefect_server, training["id"])
                  if r["parent_task_run_id"] and started_by(prefect_server, r) == started["id"]]
    assert len(retraining) == 1 and "retrain" in retraining[0]["tags"]
    assert f"retrain-of:{started['id']}" in retraining[0]["tags"]
    assert retraining[0]["parameters"] == {"test_size": 0.25, "min_accuracy": 0.9}
    deadline = time.monotonic() + 120   # started: a worker picked it up
    while time.monotonic() < deadline:
        state = api(prefect_server, "GET", f"/flow_runs/{retraining[0]['id']}")["state"]
        if state["type"] != "SCHEDULED":
            break
        time.sleep(1)
    assert state["type"] in ("PENDING", "RUNNING", "COMPLETED"), state
    if state["type"] != "COMPLETED":   # it proved its point; do not spend a minute of CPU on it
        api(prefect_server, "POST", f"/flow_runs/{retraining[0]['id']}/set_state",
            {"state": {"type": "CANCELLING"}, "force": True})


def started_by(server: PrefectServer, flow_run: dict) -> str:
    """The flow run whose task called run_deployment to create `flow_run`."""
    return api(server, "GET", f"/task_runs/{flow_run['parent_task_run_id']}")["flow_run_id"]


def drift_bill_length(csv: Path) -> None:
    """The 2009 penguins (the monitor's current data) with bills 20 mm longer."""
    import pandas as pd

    frame = pd.read_csv(csv)
    frame.loc[frame["year"] == 2009, "bill_length_mm"] += 20
    frame.to_csv(csv, index=False)


def test_submit_wait_exits_4_when_the_gate_fails(tmp_path: Path, prefect_server: PrefectServer,
                                                  prefect_worker: PrefectWorker) -> None:
    """diabetes (a quick fit) with an RMSE ceiling no model meets: the worker's flow run fails
    at the gate, `--wait` says why and exits 4 like `mlopsc run`, and nothing is registered."""
    from mlflow import MlflowClient

    spec = copy_spec(ROOT / "specs" / "diabetes.mlops", tmp_path / "spec")
    build = tmp_path / "build"
    assert mlopsc("build", str(spec), "--target", "prefect", "-o", str(build), env=base_env(tmp_path)).returncode == 0
    result = mlopsc("submit", str(build), "--target", "prefect", "--api-url", prefect_server.api_url,
                    "--work-pool", prefect_worker.pool, "--run", "--wait", "--param", "max_rmse=1.0",
                    env=prefect_worker.env)
    assert result.returncode == 4, f"{result.stdout}\n{result.stderr}"
    assert "progression_gate: GateFailed" in result.stdout
    assert "flow run" in result.stdout and ": GateFailed" in result.stdout.splitlines()[-1]
    assert "does not meet <= 1" in result.stderr and "Traceback" not in result.stderr
    registry = MlflowClient(prefect_worker.mlflow_uri, registry_uri=prefect_worker.mlflow_uri)
    assert registry.search_model_versions("name='diabetes-progression'") == []


@pytest.fixture
def kubernetes_build(tmp_path: Path) -> Path:
    """Penguins built for a kubernetes pool, renamed so that its deployments are its own."""
    spec = copy_spec(ROOT / "specs" / "penguins.mlops", tmp_path / "spec")
    spec.write_text(spec.read_text().replace("pipeline penguins {", "pipeline penguins_k8s {"))
    build = tmp_path / "build"
    built = mlopsc("build", str(spec), "--target", "prefect", "--work-pool-type", "kubernetes", "-o", str(build),
                   env=base_env(tmp_path))
    assert built.returncode == 0, built.stderr
    return build


READ_POOL = """
import json, sys
from prefect import get_client
with get_client(sync_client=True) as client:
    pool = client.read_work_pool(sys.argv[1])
print(json.dumps({"type": pool.type, "variables": sorted(pool.base_job_template["variables"]["properties"])}))
"""


def read_pool(server: PrefectServer, name: str) -> dict:
    """The pool as Prefect's own client reads it: its type and its job template's variables."""
    result = subprocess.run([str(BIN / "python"), "-c", READ_POOL, name], env=server.env(), capture_output=True,
                            text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def test_a_missing_pool_is_created_with_the_type_the_build_assumed(kubernetes_build: Path,
                                                                   prefect_server: PrefectServer) -> None:
    result = mlopsc("submit", str(kubernetes_build), "--target", "prefect", "--api-url", prefect_server.api_url,
                    "--work-pool", "k8s-missing", env=prefect_server.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created work pool 'k8s-missing' (kubernetes)" in result.stdout
    pool = read_pool(prefect_server, "k8s-missing")
    assert pool["type"] == "kubernetes"
    assert {"image", "namespace"} <= set(pool["variables"])   # Prefect's default kubernetes template
    training = api(prefect_server, "GET", "/deployments/name/penguins_k8s/penguins_k8s")
    assert training["work_pool_name"] == "k8s-missing"
    assert training["job_variables"] == {"cpu": "2", "memory": "4Gi"}


def test_a_pool_of_another_type_is_used_with_a_warning(kubernetes_build: Path,
                                                       prefect_server: PrefectServer) -> None:
    subprocess.run([str(BIN / "prefect"), "work-pool", "create", "process-existing", "--type", "process"],
                   env=prefect_server.env(), check=True, capture_output=True, timeout=120)
    result = mlopsc("submit", str(kubernetes_build), "--target", "prefect", "--api-url", prefect_server.api_url,
                    "--work-pool", "process-existing", env=prefect_server.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("warning: work pool 'process-existing' is a process pool, but the build was made for a kubernetes pool"
            in result.stderr)
    assert read_pool(prefect_server, "process-existing")["type"] == "process"
    assert "Traceback" not in result.stdout + result.stderr


def test_a_pool_type_without_a_template_is_one_clear_message(kubernetes_build: Path,
                                                             prefect_server: PrefectServer) -> None:
    config = kubernetes_build / "prefect.yaml"
    config.write_text(config.read_text().replace('work_pool_type: "kubernetes"', 'work_pool_type: "no-such-type"'))
    result = mlopsc("submit", str(kubernetes_build), "--target", "prefect", "--api-url", prefect_server.api_url,
                    "--work-pool", "odd-missing", env=prefect_server.env())
    assert result.returncode == 5
    assert "create it yourself: prefect work-pool create odd-missing --type no-such-type" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert api(prefect_server, "POST", "/work_pools/filter", {"work_pools": {"name": {"any_": ["odd-missing"]}}}) == []


def test_no_server_configured_is_a_usage_error(penguins_build, tmp_path: Path) -> None:
    _, build = penguins_build
    result = mlopsc("submit", str(build), "--target", "prefect", env=base_env(tmp_path))
    assert result.returncode == 2
    assert "no Prefect server: pass --api-url" in result.stderr and "Traceback" not in result.stderr


def test_prefect_deploy_reads_the_generated_prefect_yaml(penguins_build, prefect_server: PrefectServer,
                                                         prefect_worker: PrefectWorker) -> None:
    """prefect.yaml is Prefect's own format: `prefect deploy --all` in the build folder takes it."""
    _, build = penguins_build
    text = (build / "prefect.yaml").read_text().replace('name: "mlopsc"', f'name: "{prefect_worker.pool}"')
    (build / "prefect.yaml").write_text(text)
    result = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], cwd=build,
                            env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    monitor = api(prefect_server, "GET", "/deployments/name/penguins-species_drift/penguins")
    assert monitor["entrypoint"] == "flows.py:species_drift_monitor"
    assert [s["schedule"]["cron"] for s in monitor["schedules"]] == ["0 * * * *"]
