"""The cache-invalidation matrix, asserted through the runner's own run record: after a first run,
changing one thing re-runs exactly the steps that depend on it, and nothing else."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from localrun import HERE, REPO, clean_env, copy_project, mlopsc, ran, run_json, statuses
from mlopsc.runtime.state_folder import STATE_FOLDER

ALL = {"penguins", "penguins_quality", "penguins_split", "species_model", "species_eval", "release",
       "species_service"}
FROM_SPLIT = {"penguins_split", "species_model", "species_eval", "release", "species_service"}


@pytest.fixture(scope="module")
def primed(tmp_path_factory):
    """One trained project shared by this module's tests. A test that changes a file puts it back
    (`edited`): the entries of the original state stay valid, so each test starts fully cached."""
    project = copy_project(tmp_path_factory.mktemp("matrix"), HERE / "specs" / "quick.mlops")
    first = run_json("quick.mlops", cwd=project)
    assert ran(first) == ALL
    return project


@contextlib.contextmanager
def edited(path: Path, change):
    original = path.read_text()
    path.write_text(change(original))
    try:
        yield
    finally:
        path.write_text(original)


def test_unchanged_rerun_is_all_cache_hits_and_reformatting_keeps_the_cache(primed):
    # Positions and run policy are not part of a key: comments, blank lines, retries keep the cache.
    reformat = lambda text: "# reformatted\n\n" + text.replace("max_iter = 500 }", "max_iter = 500 }\n    retries = 1")
    with edited(primed / "quick.mlops", reformat):
        record = run_json("quick.mlops", cwd=primed)
    assert set(statuses(record).values()) == {"cached"}
    assert record["steps"]["penguins"]["reason"] == "input file unchanged"
    assert record["mlflow_run_id"] is None   # nothing executed, no MLflow run opened


def test_changed_data_file_reruns_the_source_and_everything_downstream(primed):
    def heavier(text):
        # Every 2007 penguin 1 g heavier: rows on both sides of the split change.
        rows = [line.split(",") for line in text.splitlines()]
        for row in rows[1:]:
            if row[7] == "2007" and row[5] != "NA":
                row[5] = str(int(row[5]) + 1)
        return "\n".join(",".join(row) for row in rows) + "\n"

    with edited(primed / "data" / "penguins.csv", heavier):
        record = run_json("quick.mlops", cwd=primed)
    assert ran(record) == ALL
    assert record["steps"]["penguins"]["reason"] == "input file changed"
    assert record["steps"]["penguins_split"]["reason"].startswith("input data changed")


def test_changed_param_reruns_only_the_steps_that_read_it_and_their_downstream(primed):
    record = run_json("quick.mlops", "--param", "test_size=0.3", cwd=primed)
    assert ran(record) == FROM_SPLIT
    assert statuses(record)["penguins_quality"] == "cached"
    assert "param test_size changed (0.25 -> 0.3)" in record["steps"]["penguins_split"]["reason"]


def test_changed_step_config_reruns_that_step_and_its_downstream(primed):
    with edited(primed / "quick.mlops", lambda text: text.replace("max_iter = 500", "max_iter = 400")):
        record = run_json("quick.mlops", cwd=primed)
    assert ran(record) == {"species_model", "species_eval", "release", "species_service"}
    assert "config changed" in record["steps"]["species_model"]["reason"]


def test_changed_runtime_version_reruns_everything(primed):
    # The runtime version is read when keys are computed; a new version is simulated in a
    # separate process that imports the real CLI after changing it.
    code = ("import sys, mlopsc.runtime as r; r.__version__ = '99.0'; "
            "from mlopsc.backends.cli import main; main(sys.argv[1:])")
    done = subprocess.run([sys.executable, "-c", code, "run", "quick.mlops", "--json"], cwd=primed,
                          env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert ran(record) == ALL
    assert "runtime version changed" in record["steps"]["species_model"]["reason"]


def test_plan_predicts_without_executing(primed):
    before = sorted((primed / STATE_FOLDER / "runs").iterdir())
    with edited(primed / "quick.mlops", lambda text: text.replace("max_iter = 500", "max_iter = 300")):
        done = mlopsc("plan", "quick.mlops", "--json", cwd=primed)
    assert done.returncode == 0, done.stderr
    verdicts = {row["step"]: (row["verdict"], row["reason"]) for row in json.loads(done.stdout)}
    assert verdicts["penguins"] == ("cached", "input file unchanged")
    assert verdicts["penguins_split"][0] == "cached"
    assert verdicts["species_model"][0] == "run" and "config changed" in verdicts["species_model"][1]
    assert verdicts["species_eval"][0] == "may run"
    assert sorted((primed / STATE_FOLDER / "runs").iterdir()) == before   # nothing ran


def test_no_cache_and_from_select_what_executes(primed):
    record = run_json("quick.mlops", "--from", "species_model", "--no-cache", cwd=primed)
    assert ran(record) == {"species_model", "species_eval", "release", "species_service"}
    assert statuses(record)["penguins_split"] == "cached"
    assert record["steps"]["species_model"]["reason"] == "--no-cache"
    only = run_json("quick.mlops", "--only", "species_eval", "--no-cache", cwd=primed)
    assert ran(only) == {"species_eval"}


def test_only_a_step_whose_upstream_is_not_cached_fails_clearly(quick):
    done = mlopsc("run", "quick.mlops", "--only", "species_eval", cwd=quick)
    assert done.returncode == 2
    assert "has no cached result" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_unknown_step_name_is_a_usage_error_with_a_suggestion(quick):
    done = mlopsc("run", "quick.mlops", "--only", "species_evl", cwd=quick)
    assert done.returncode == 2
    assert "did you mean species_eval" in done.stderr



def test_plan_of_a_sql_source_says_it_always_reads(tmp_path):
    project = copy_project(tmp_path / "wine", REPO / "specs" / "wine_sql.mlops")
    done = mlopsc("plan", "wine_sql.mlops", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    rows = {row["step"]: row for row in json.loads(done.stdout)}
    assert rows["wines"]["verdict"] == "run" and "always re-read" in rows["wines"]["reason"]
    assert rows["wines_split"]["verdict"] == "may run"
    assert not (project / STATE_FOLDER).exists()       # planning writes nothing


def test_a_cached_result_is_the_result_the_step_returned(primed):
    """Cache hits hand lineage and the summary the same StepResult the runtime returned, every
    field of every output included (the port type, not only URI and hash)."""
    record = run_json("quick.mlops", cwd=primed)
    entries = {p.parent.name: json.loads(p.read_text()) for p in (primed / STATE_FOLDER / "cache").glob("*/*.json")
               if json.loads(p.read_text())["key"] == record["steps"][p.parent.name]["key"]}
    for name, step in record["steps"].items():
        assert step["status"] == "cached"
        stored = entries[name]["result"]
        assert {k: v for k, v in step["result"].items() if k != "outputs"} == \
            {k: v for k, v in stored.items() if k != "outputs"}
        for port, out in step["result"]["outputs"].items():
            assert out == stored["outputs"][port]
            assert out["type"] in ("Dataset", "Model", "Metrics", "Report")
