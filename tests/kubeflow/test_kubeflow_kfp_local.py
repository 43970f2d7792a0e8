"""The compiled YAML, executed by kfp.local, behaves as `mlopsc run` on the same spec: same dataset
hashes, same metrics (within float tolerance), same gate decision. No cluster: kfp.local runs each
task of the very YAML a cluster would get in a subprocess of this interpreter; each runner has its
own MLflow SQLite store."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kfp_harness import REPO, SPECS, build_text, run_env, run_kfp_local, run_local


def copy_spec(spec: Path, tmp: Path) -> Path:
    """The spec and its data in a temp folder: what the runs write beside it (a score's output
    file) stays out of the repository."""
    folder = tmp / "spec"
    shutil.copytree(spec.parent / "data", folder / "data", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copy(spec, folder / spec.name)
    return folder / spec.name


def both(spec: Path, package: Path, tmp: Path, arguments: dict, local_args: tuple[str, ...] = ()):
    """Run the spec on the local runner and its compiled YAML on kfp.local, side by side."""
    local_env, kfp_env = run_env(spec, tmp / "local"), run_env(spec, tmp / "kfp")
    arguments = {"mlopsc_spec_dir": str(spec.parent), **arguments}
    with ThreadPoolExecutor(2) as pool:
        local = pool.submit(run_local, spec, tmp / "local" / "state", local_env, *local_args)
        kfp = pool.submit(run_kfp_local, package, tmp / "kfp" / "root", arguments, kfp_env)
        return local.result(), kfp.result()


def local_results(record: dict) -> dict[str, dict]:
    return {name: s["result"] for name, s in record.get("steps", {}).items() if s.get("result")}


def assert_same_outcome(local_results_: dict[str, dict], kfp_results: dict[str, dict]) -> None:
    assert set(local_results_) == set(kfp_results)
    for step, expected in local_results_.items():
        got = kfp_results[step]
        assert got["status"] == expected["status"], step
        for port, artifact in expected["outputs"].items():
            if artifact["uri"].endswith(".parquet"):       # datasets: content hashes agree
                assert got["outputs"][port]["sha256"] == artifact["sha256"], f"{step}.{port}"
        if expected["kind"] == "evaluate":
            assert got["metrics"].keys() == expected["metrics"].keys()
            for name, value in expected["metrics"].items():
                assert got["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), f"{step}: {name}"
        if expected["kind"] == "gate":
            assert got["decision"] == expected["decision"], step
        if expected["kind"] == "check":
            assert got.get("passed") == expected.get("passed") and got.get("failures") == expected.get("failures")


# The examples whose compiled YAML kfp.local executes: between them every kind of step, a CSV and a
# SQL source (its URL a secret reference), champion rules and both monitor pipelines. diabetes
# (a regression) compiles through the same templates (test_kubeflow_build.py holds its YAML to the
# golden file); its steps run in the shared runtime, which the local and Prefect runs of it prove.
# A third kfp.local run took three more minutes of the suite for nothing else.
EXECUTED = [spec for spec in SPECS if spec.stem in ("penguins", "wine_sql")]


@pytest.mark.parametrize("spec", EXECUTED, ids=lambda p: p.stem)
def test_compiled_yaml_under_kfp_local_matches_the_local_runner(spec, built, tmp_path):
    """The training pipeline, then each monitor pipeline against the model it registered."""
    folder, files, _ = built[spec.stem]
    spec = copy_spec(spec, tmp_path)
    (code, record, stderr), kfp = both(spec, folder / "pipeline.yaml", tmp_path, {})
    assert code == 0, stderr
    assert kfp["ok"], kfp["log"][-6000:]
    assert_same_outcome(local_results(record), kfp["results"])
    # The kfp artifacts carry the runtime's hashes, so the KFP UI and MLMD show dataset versions.
    for task in kfp["tasks"].values():
        for name, artifacts in task["artifacts"].items():
            if name != "summary":
                assert all(a["metadata"].get("sha256") for a in artifacts), name
    assert "Traceback" not in kfp["log"]
    assert_report_artifact(kfp["tasks"])
    assert_same_registry(spec, tmp_path)
    for name in sorted(n for n in files if n.startswith("monitor_") and n.endswith(".yaml")):
        check_monitor(spec, folder / name, name[len("monitor_"):-len(".yaml")], tmp_path)


def assert_report_artifact(tasks: dict) -> None:
    """The run's HTML report is the finish task's `report` artifact (kfp's HTML type, which the
    KFP UI renders), built from the same step results."""
    from report_page import ReportPage, assert_inert

    (report,) = tasks["finish-run"]["artifacts"]["report"]
    page = ReportPage.read(report["uri"].removeprefix("file://"))
    assert_inert(page)
    assert {"run", "evaluation", "gate"} <= set(page.sections) and page.sections["run"].figures == ["graph"]
    assert {row[2] for row in page.rows("run", "steps")} == {"ok"}


def assert_same_registry(spec: Path, tmp: Path) -> None:
    """Each deployed version carries the same gate verdict and metrics in both stores (what a later
    gate's champion rule reads), written by the lineage record at the end of the run."""
    import mlflow
    from mlopsc.compiler import ir, load

    for deploy in [s for s in load(str(spec)).pipeline.steps if isinstance(s, ir.Deploy)]:
        tags = []
        for runner in ("local", "kfp"):
            client = mlflow.MlflowClient(f"sqlite:///{tmp / runner / 'mlflow.db'}")
            tags.append(client.get_model_version_by_alias(deploy.registry, deploy.alias).tags)
        local, kfp = tags
        assert kfp["mlopsc.gate"] == local["mlopsc.gate"]
        metrics = sorted(k for k in local if k.startswith("mlopsc.metric."))
        assert metrics and metrics == sorted(k for k in kfp if k.startswith("mlopsc.metric."))
        for key in metrics:
            assert float(kfp[key]) == pytest.approx(float(local[key]), rel=1e-9), key


def test_lineage_records_the_datasets_of_a_kfp_run():
    from mlopsc.runtime import RunContext
    from mlopsc.runtime.lineage import build_record

    result = {"step": "penguins", "kind": "source", "status": "ok", "outputs": {"data": {
        "uri": "minio://mlpipeline/v2/artifacts/penguins/1/source-penguins/data", "sha256": "ab" * 32,
        "type": "Dataset"}}}
    record = build_record(RunContext(pipeline="penguins", run_id="1"), [result])
    assert record["datasets"] == {"penguins.data": "ab" * 32}


def check_monitor(spec: Path, package: Path, monitor: str, tmp: Path) -> None:
    """The monitor pipeline computes the same drift verdict as `mlopsc monitor`. When a drift rule
    asks for a retrain, the retrain task calls the KFP API: here a closed port, so the run fails
    at that task with one clear message (starting a real run needs a cluster)."""
    local_env, kfp_env = run_env(spec, tmp / "local"), run_env(spec, tmp / "kfp")
    with ThreadPoolExecutor(2) as pool:
        local = pool.submit(run_local, spec, tmp / "local" / "state", local_env, "--only", monitor,
                            command="monitor")
        kfp = pool.submit(run_kfp_local, package, tmp / "kfp" / package.stem, {
            "mlopsc_spec_dir": str(spec.parent), "mlopsc_kfp_host": "http://127.0.0.1:9"}, kfp_env)
        (code, record, stderr), kfp = local.result(), kfp.result()
    assert record.get("steps"), f"mlopsc monitor exited {code}: {stderr}"
    expected = local_results(record)[monitor]
    got = kfp["results"][monitor]
    for key in ("status", "retrain", "reasons", "alerts"):
        assert got.get(key) == expected.get(key), f"{monitor}: {key}"
    if got["retrain"]:
        assert not kfp["ok"] and "request-retrain" in kfp["error"]
        assert "cannot start a run of" in kfp["log"] and "127.0.0.1:9" in kfp["log"]
    else:
        assert kfp["ok"], kfp["log"][-4000:]
    assert "Traceback" not in kfp["log"]


GATE_SPEC = """
pipeline gated {
  params { min_accuracy: float = 0.5 }
  source penguins { csv = "data/penguins.csv" }
  split penguins_split from penguins { test_size = 0.3  stratify = species  seed = 3 }
  train species_model on penguins_split.train {
    target = species
    features = [bill_length_mm, flipper_length_mm]
    estimator = sklearn.linear_model.LogisticRegression { max_iter = 300 }
  }
  evaluate species_eval { model = species_model  data = penguins_split.test  metrics = [accuracy] }
  gate release on species_eval { require accuracy >= params.min_accuracy }
  deploy species_service { model = species_model  after = release  registry = "gated-species" }
}
"""


def test_a_failing_gate_fails_the_run_before_the_deploy_and_a_forced_one_deploys(tmp_path):
    """`mlopsc run` exits 4 on a failing gate (tests/local); on KFP the gate task fails with the
    gate's reasons, the deploy never runs, the registry is untouched and the MLflow parent run is
    closed as failed. With `mlopsc_force_gate` the gate passes, recorded as forced by the KFP run."""
    from mlopsc.compiler import load

    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "data").symlink_to(REPO / "specs" / "data")
    files, _ = build_text(GATE_SPEC, spec_dir, "gated.mlops")
    package = tmp_path / "pipeline.yaml"
    package.write_text(files["pipeline.yaml"])
    spec = spec_dir / "gated.mlops"
    arguments = {"mlopsc_spec_dir": str(spec_dir), "min_accuracy": 1.01}
    with ThreadPoolExecutor(2) as pool:
        failing = pool.submit(run_kfp_local, package, tmp_path / "kfp" / "root", arguments,
                              run_env(spec, tmp_path / "kfp"))
        forced = pool.submit(run_kfp_local, package, tmp_path / "forced" / "root",
                             {**arguments, "mlopsc_force_gate": True}, run_env(spec, tmp_path / "forced"))
        kfp, forced = failing.result(), forced.result()

    assert not kfp["ok"] and "gate-release" in kfp["error"]
    assert "species_service" not in kfp["results"] and "species_eval" in kfp["results"]
    line = load(str(spec)).pipeline.step("release").span.line
    assert f"mlopsc: step release (gated.mlops:{line}:3): the gate did not pass" in kfp["log"]
    assert "Traceback" not in kfp["log"]
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'kfp' / 'mlflow.db'}")
    assert not client.search_registered_models()
    parents = [r for r in client.search_runs([client.get_experiment_by_name("gated").experiment_id])
               if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parents] == ["FAILED"]

    assert forced["ok"], forced["log"][-4000:]
    decision = forced["results"]["release"]["decision"]
    assert decision["passed"] and decision["forced"] and decision["forced_by"].startswith("kubeflow run ")
    assert forced["results"]["release"]["status"] == "warn"
    assert forced["results"]["species_service"]["status"] == "ok"


CHECK_SPEC = """
pipeline checked {
  source penguins { csv = "data/penguins.csv" }
  check enough on penguins { rows >= 100000  on_fail = stop }
  split penguins_split from penguins { test_size = 0.3  seed = 3 }
}
"""


def test_a_failing_stop_check_fails_the_run_before_its_consumers(tmp_path):
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "data").symlink_to(REPO / "specs" / "data")
    files, _ = build_text(CHECK_SPEC, spec_dir, "checked.mlops")
    package = tmp_path / "pipeline.yaml"
    package.write_text(files["pipeline.yaml"])
    kfp = run_kfp_local(package, tmp_path / "kfp" / "root", {"mlopsc_spec_dir": str(spec_dir)},
                        run_env(spec_dir / "checked.mlops", tmp_path / "kfp"))
    assert not kfp["ok"] and "check-enough" in kfp["error"]
    assert set(kfp["results"]) == {"penguins"}             # the split waits for the check, and never runs
    assert "mlopsc: step enough (checked.mlops:4:3)" in kfp["log"]
    assert "Traceback" not in kfp["log"]
