"""The cache-invalidation matrix, asserted through the runner's own run record: after a first run,
changing one thing re-runs exactly the steps that depend on it, and nothing else."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from localrun import clean_env, mlopsc, ran, run_json, statuses

ALL = {"penguins", "penguins_quality", "penguins_split", "species_model", "species_eval", "release",
       "species_service"}
FROM_SPLIT = {"penguins_split", "species_model", "species_eval", "release", "species_service"}


@pytest.fixture
def primed(quick):
    first = run_json("quick.mlops", cwd=quick)
    assert ran(first) == ALL
    return quick


def test_unchanged_rerun_is_all_cache_hits_and_reformatting_keeps_the_cache(primed):
    spec = primed / "quick.mlops"
    # Positions are not part of a key: comments and blank lines, and run policy, keep the cache.
    spec.write_text("# reformatted\n\n" + spec.read_text().replace("max_iter = 500 }", "max_iter = 500 }\n    retries = 1"))
    record = run_json("quick.mlops", cwd=primed)
    assert set(statuses(record).values()) == {"cached"}
    assert record["steps"]["penguins"]["reason"] == "input file unchanged"
    assert record["mlflow_run_id"] is None   # nothing executed, no MLflow run opened


def test_changed_data_file_reruns_the_source_and_everything_downstream(primed):
    data = primed / "data" / "penguins.csv"
    lines = data.read_text().splitlines()
    lines[1] = lines[1].replace("39.1", "39.2", 1)   # one measurement of a 2007 penguin
    data.write_text("\n".join(lines) + "\n")
    record = run_json("quick.mlops", cwd=primed)
    assert ran(record) == ALL
    assert record["steps"]["penguins"]["reason"] == "input file changed"


def test_changed_param_reruns_only_the_steps_that_read_it_and_their_downstream(primed):
    record = run_json("quick.mlops", "--param", "test_size=0.3", cwd=primed)
    assert ran(record) == FROM_SPLIT
    assert statuses(record)["penguins_quality"] == "cached"
    assert "param test_size changed (0.25 -> 0.3)" in record["steps"]["penguins_split"]["reason"]


def test_changed_step_config_reruns_that_step_and_its_downstream(primed):
    spec = primed / "quick.mlops"
    spec.write_text(spec.read_text().replace("max_iter = 500", "max_iter = 400"))
    record = run_json("quick.mlops", cwd=primed)
    assert ran(record) == {"species_model", "species_eval", "release", "species_service"}
    assert record["steps"]["species_model"]["reason"] == "config changed"


def test_changed_runtime_version_reruns_everything(primed):
    # The runtime version is read when keys are computed; a new version is simulated in a
    # separate process that imports the real CLI after changing it.
    code = ("import sys, mlopsc.runtime as r; r.__version__ = '99.0'; "
            "from mlopsc.backends.cli import main; main(sys.argv[1:])")
    done = subprocess.run([sys.executable, "-c", code, "run", "quick.mlops", "--json"], cwd=primed,
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert ran(record) == ALL
    assert "runtime version changed" in record["steps"]["species_model"]["reason"]


def test_plan_predicts_without_executing(primed):
    spec = primed / "quick.mlops"
    spec.write_text(spec.read_text().replace("max_iter = 500", "max_iter = 300"))
    before = sorted((primed / ".mlops" / "runs").iterdir())
    done = mlopsc("plan", "quick.mlops", "--json", cwd=primed)
    assert done.returncode == 0, done.stderr
    verdicts = {row["step"]: (row["verdict"], row["reason"]) for row in json.loads(done.stdout)}
    assert verdicts["penguins"] == ("cached", "input file unchanged")
    assert verdicts["penguins_split"][0] == "cached"
    assert verdicts["species_model"] == ("run", "config changed")
    assert verdicts["species_eval"][0] == "may run"
    assert sorted((primed / ".mlops" / "runs").iterdir()) == before   # nothing ran


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

