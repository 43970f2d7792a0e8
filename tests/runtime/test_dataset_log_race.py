"""Steps running at once (`mlopsc run --jobs 2`, Prefect's tasks) often log the same dataset (two
trains on one split). MLflow checks that a dataset is missing, then inserts it: four processes
doing that at the same instant broke the store's unique key in three of them, and those steps
failed. Each must now log it."""
from __future__ import annotations

import subprocess
import sys
import time

LOG = """
import sys, time
import mlflow
import pandas as pd
from mlopsc.runtime import tracking

mlflow.set_tracking_uri(sys.argv[1])
experiment = mlflow.set_experiment("race")
frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
with mlflow.start_run(experiment_id=experiment.experiment_id):
    while time.time() < float(sys.argv[2]):
        time.sleep(0.001)
    tracking.log_dataset(frame, sys.argv[3], name="split.train", digest="ab" * 32, context="training")
"""


def test_steps_logging_the_same_dataset_at_once_all_succeed(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).create_experiment("race")      # the store exists before the race
    start = str(time.time() + 15)                           # after every process's imports
    processes = [subprocess.Popen([sys.executable, "-c", LOG, uri, start, str(tmp_path / "train.parquet")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = [(p.wait(timeout=120), p.communicate()[1]) for p in processes]
    assert all(code == 0 for code, _ in outcomes), [err[-400:] for code, err in outcomes if code]
    runs = mlflow.MlflowClient(uri).search_runs([mlflow.MlflowClient(uri).get_experiment_by_name("race").experiment_id])
    assert len(runs) == 4 and all(len(run.inputs.dataset_inputs) == 1 for run in runs)
