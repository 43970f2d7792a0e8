"""Every example spec end to end with `mlopsc run`: each pipeline step runs, the model is registered
under its alias in the real MLflow store, and a second run serves every step from the cache."""
from __future__ import annotations

import pytest
from localrun import SPECS, champion, mlopsc, ran, statuses
from mlopsc.compiler.spec_files import specs_in
from mlopsc.runtime.state_folder import STATE_FOLDER

EXAMPLES = [p.name for p in specs_in(SPECS)]


def _assert_deployed(project, record):
    deploys = [s["result"] for s in record["steps"].values() if s["kind"] == "deploy"]
    assert deploys, "every example deploys a model"
    for release in deploys:
        version = champion(project / STATE_FOLDER, release["registry"])
        assert version is not None and str(version.version) == release["version"]
        assert release["alias"] == "champion"


@pytest.mark.parametrize("spec", EXAMPLES)
def test_example_runs_end_to_end_then_fully_from_cache(spec, example_runs):
    project, _, first, second = example_runs(spec)
    assert first["exit_code"] == 0
    assert ran(first) == set(first["order"]), statuses(first)
    _assert_deployed(project, first)
    assert first["mlflow_run_id"]
    cached = {n for n, s in second["steps"].items() if s["status"] == "cached"}
    # A source that cannot be hashed before reading (SQL) always runs, and so does a step with
    # `cache = off`; what reads them stays cached.
    always = {n for n, s in second["steps"].items()
              if s["reason"] == "cache = off" or (s["kind"] == "source" and "always re-read" in s["reason"])}
    assert cached | always == set(second["order"]) and ran(second) == always


def test_what_a_person_sees_when_piped(penguins_runs):
    project, _, _ = penguins_runs
    done = mlopsc("run", "penguins.mlops", cwd=project)
    assert done.returncode == 0
    out = done.stdout
    assert "0 ran, 7 from cache" in out
    assert "check    penguins_quality: passed" in out
    assert "metrics  species_eval: accuracy" in out
    assert "gate     release: passed" in out
    assert "model    penguins-species version 1 alias champion" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{project / STATE_FOLDER / 'mlflow.db'}" in out
    assert "cached   species_model  (cache hit)" in done.stderr      # plain progress, no escape codes
    assert "\x1b[" not in done.stderr
