"""Monitors on the local runner: `mlopsc monitor` and `mlopsc run --only MONITOR` run the monitor
with what it needs; when its `retrain` rule fires on drifted data, the training pipeline runs
again (its sources re-read the current data) and the record says what came of it.

A monitor whose model has a deploy scores the deployed model: it neither trains nor needs a
cached train result, so a change of the training data since the last run does not stop it (before
anything is deployed it fails with one line saying what to run first: tests/runtime/test_monitor_stage.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from localrun import mlopsc, run_json
from mlopsc.runtime.state_folder import STATE_FOLDER

MONITOR = """
  source penguins_2009 { csv = "data/penguins.csv"  filter = "year == 2009" }

  monitor species_drift {
    model = species_model  reference = penguins_split.train  current = penguins_2009
    drift psi(bill_length_mm) > 0.2 -> retrain
  }
}
"""


def test_monitor_scores_the_deployed_model_and_says_what_its_retrain_deployed(quick):
    spec = quick / "quick.mlops"
    spec.write_text(spec.read_text().rstrip().removesuffix("}") + MONITOR)
    trained = run_json("quick.mlops", cwd=quick)
    assert "species_drift" not in trained["steps"]          # monitors are not part of a run

    # The training data changes (labelled rows corrected, here: some dropped), and the 2009 batch
    # drifts by far more than a standard deviation of bill length (~5.5 mm).
    data = quick / "data" / "penguins.csv"
    frame = pd.read_csv(data).drop(index=range(10))
    frame.loc[frame["year"] == 2009, "bill_length_mm"] += 15
    frame.to_csv(data, index=False)

    done = mlopsc("monitor", "quick.mlops", "--json", cwd=quick)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    monitor = record["steps"]["species_drift"]
    assert monitor["status"] == "ok" and monitor["result"]["retrain"] is True
    assert "species_model" not in record["steps"]                  # it scored the deployed model
    assert record["steps"]["penguins_2009"]["status"] == "ok"      # current data was read
    assert record["steps"]["penguins_split"]["status"] == "ok"     # the reference, from the new data
    report = json.loads(Path(monitor["result"]["outputs"]["report"]["uri"]).read_text())
    assert report["model"] == "models:/quick-species@champion"
    retrain = record["retrain"]
    assert retrain["monitors"] == ["species_drift"] and retrain["status"] == "ok"
    assert retrain["outcome"] == "deployed quick-species version 2 (alias champion)"
    retrain_record = json.loads((quick / STATE_FOLDER / "runs" / f"{retrain['run_id']}.json").read_text())
    assert retrain_record["options"]["retrain_of"] == record["run_id"]
    assert set(retrain_record["order"]) == set(trained["order"])

    # Again through `mlopsc run --only MONITOR`, with the human summary: the rule still fires, and
    # with the training data unchanged since version 2 the retrain says there is nothing to deploy.
    done = mlopsc("run", "quick.mlops", "--only", "species_drift", cwd=quick)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "monitor  species_drift: 1 drift rule(s) fired" in done.stdout
    assert "retrain  started run" in done.stdout
    assert ("  retrain  training data and config unchanged since quick-species version 2; nothing new to "
            "deploy until the training data changes") in done.stdout.splitlines()


def test_monitor_command_needs_a_monitor(quick):
    done = mlopsc("monitor", "quick.mlops", cwd=quick)
    assert done.returncode == 2
    assert "has no monitor block" in done.stderr
