"""The generated flows under a real Prefect server give what `mlopsc run` gives: the same dataset
hashes, metrics (within float tolerance) and gate decision, for every example spec; a failing gate
ends the flow run FAILED with its reasons in the logs, nothing deployed, the champion unchanged."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from prefect_harness import (
    ROOT,
    SPECS,
    PrefectServer,
    api,
    base_env,
    copy_spec,
    flow_run_logs,
    mlopsc,
    run_flow,
)
from report_page import ReportPage

pytestmark = pytest.mark.timeout(900)


class Runs:
    """Each spec run once by the local runner and once as a Prefect flow, in separate folders and
    MLflow stores (so that both see the same registry: empty)."""

    def __init__(self, server: PrefectServer, spec_env: dict[str, str], tmp: Path) -> None:
        self.server, self.spec_env, self.tmp, self.done = server, spec_env, tmp, {}

    def get(self, spec: Path) -> dict[str, Any]:
        if spec.stem not in self.done:
            self.done[spec.stem] = self._run(spec)
        return self.done[spec.stem]

    def _run(self, spec: Path) -> dict[str, Any]:
        folder = self.tmp / spec.stem
        local_spec = copy_spec(spec, folder / "local")
        env = {**base_env(self.server.home), **self.spec_env,
               "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'local' / 'mlflow.db'}"}
        local = mlopsc("run", str(local_spec), "--json", env=env, cwd=folder / "local")
        assert local.stdout.strip(), local.stderr
        record = json.loads(local.stdout)

        prefect_spec = copy_spec(spec, folder / "prefect")
        build = folder / "build"
        built = mlopsc("build", str(prefect_spec), "--target", "prefect", "-o", str(build), env=env)
        assert built.returncode == 0, built.stderr
        program_name = prefect_spec.read_text().split("pipeline", 1)[1].split("{", 1)[0].strip()
        flow_env = self.server.env(**self.spec_env, MLOPSC_STORAGE=str(folder / "storage"),
                                   MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'prefect' / 'mlflow.db'}")
        flow = run_flow(build, f"{program_name}_pipeline", flow_env)
        return {"local": record, "prefect": flow, "build": build, "env": flow_env, "function": f"{program_name}_pipeline",
                "mlflow": flow_env["MLFLOW_TRACKING_URI"]}


@pytest.fixture(scope="module")
def runs(prefect_server, spec_data, tmp_path_factory) -> Runs:
    return Runs(prefect_server, spec_data, tmp_path_factory.mktemp("runs"))


def datasets(result: dict[str, Any]) -> dict[str, str]:
    return {port: out["sha256"] for port, out in (result.get("outputs") or {}).items()
            if out["uri"].endswith(".parquet")}


def assert_close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {a} != {b}"
    else:
        assert a == b, where


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_same_results_as_the_local_runner(spec: Path, runs: Runs) -> None:
    run = runs.get(spec)
    local, flow = run["local"], run["prefect"]
    assert flow["type"] == ("COMPLETED" if local["exit_code"] == 0 else "FAILED"), flow["output"][-3000:]
    ran_locally = {name: s["result"] for name, s in local["steps"].items() if s["result"]}
    ran_in_prefect = flow["summary"]["steps"]
    assert set(ran_in_prefect) == set(ran_locally)
    for name, result in ran_locally.items():
        theirs = ran_in_prefect[name]
        assert datasets(theirs) == datasets(result), f"dataset hashes of {name}"
        if "metrics" in result:
            assert_close(result["metrics"], theirs["metrics"], f"{name}.metrics")
        if result["kind"] == "gate":
            assert theirs["decision"]["passed"] == result["decision"]["passed"]
    assert any(r["kind"] == "source" for r in ran_locally.values())
    assert_lineage_recorded(run["mlflow"], flow["summary"])
    page = ReportPage.read(flow["summary"]["report"])      # the run's HTML report, from the same results
    assert {row[0] for row in page.rows("run", "steps")} == set(ran_locally)
    assert {"evaluation", "gate"} <= set(page.sections)


def assert_lineage_recorded(mlflow_uri: str, summary: dict[str, Any]) -> None:
    """The flow run's MLflow parent run carries the lineage record, as a local run's does."""
    from mlflow import MlflowClient

    parent = MlflowClient(mlflow_uri).get_run(summary["mlflow_run_id"])
    assert parent.data.tags["mlopsc.run_id"] == summary["run_id"]
    recorded = {k for k in parent.data.tags if k.startswith("mlopsc.lineage.dataset.")}
    expected = {f"mlopsc.lineage.dataset.{step}.{port}" for step, result in summary["steps"].items()
                for port in datasets(result)}
    assert expected and recorded == expected



def test_failing_gate_fails_the_flow_run_and_keeps_the_champion(runs: Runs, prefect_server: PrefectServer) -> None:
    """diabetes (a quick Ridge fit): its first run made a champion; a ceiling on RMSE no model can
    meet fails the gate of the second."""
    from mlflow import MlflowClient

    first = runs.get(ROOT / "specs" / "diabetes.mlops")
    assert first["prefect"]["type"] == "COMPLETED"
    registry = MlflowClient(first["mlflow"], registry_uri=first["mlflow"])
    champion = registry.get_model_version_by_alias("diabetes-progression", "champion").version

    failed = run_flow(first["build"], first["function"], first["env"], {"max_rmse": 1.0})
    assert (failed["type"], failed["state"]) == ("FAILED", "GateFailed"), failed["output"][-3000:]
    steps = failed["summary"]["steps"]
    assert steps["progression_gate"]["decision"]["passed"] is False
    assert "progression_service" not in steps
    logs = flow_run_logs(prefect_server, failed["flow_run_id"])
    assert "step progression_gate" in logs and "does not meet <= 1" in logs, logs
    assert "Traceback" not in logs and "NoneType: None" not in logs
    assert "pipeline diabetes failed" in failed["message"]
    # The failed run's report, linked from the flow run's artifacts.
    assert ReportPage.read(failed["summary"]["report"]).sections["gate"].headings == ["progression_gate failed"]
    links = api(prefect_server, "POST", "/artifacts/filter",
                {"artifacts": {"key": {"any_": ["mlopsc-report-diabetes"]}}})
    assert any(a["flow_run_id"] == failed["flow_run_id"] and failed["summary"]["report"] in a["data"] for a in links), links
    assert registry.get_model_version_by_alias("diabetes-progression", "champion").version == champion
    assert len(registry.search_model_versions("name='diabetes-progression'")) == 1


CHECK_FAILS = '''
pipeline too_few {
  source penguins { csv = "data/penguins.csv" }
  check enough on penguins { rows >= 100000  on_fail = stop }
  split penguins_split from penguins { test_size = 0.25  seed = 1 }
}
'''


def test_failing_check_stops_the_flow_run(tmp_path: Path, prefect_server: PrefectServer) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "penguins.csv").write_bytes((ROOT / "specs" / "data" / "penguins.csv").read_bytes())
    spec = tmp_path / "too_few.mlops"
    spec.write_text(CHECK_FAILS)
    env = base_env(tmp_path)
    assert mlopsc("build", str(spec), "--target", "prefect", "-o", str(tmp_path / "build"), env=env).returncode == 0
    local = mlopsc("run", str(spec), "--json", env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'l.db'}"})
    assert local.returncode == 3, local.stderr

    flow = run_flow(tmp_path / "build", "too_few_pipeline", prefect_server.env(
        MLOPSC_STORAGE=str(tmp_path / "storage"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'p.db'}"))
    assert (flow["type"], flow["state"]) == ("FAILED", "CheckFailed"), flow["output"][-3000:]
    assert set(flow["summary"]["steps"]) == {"penguins", "enough"}      # the split never ran
    logs = flow_run_logs(prefect_server, flow["flow_run_id"])
    assert "step enough" in logs and "100000" in logs and "Traceback" not in logs
