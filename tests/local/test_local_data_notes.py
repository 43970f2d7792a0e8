"""What `mlopsc run` tells about the data as a new user's CSV brings it (tests/data/cars.csv: three
rows without Miles_per_Gallon, one Horsepower that reads "ninety"): the source's warning and the
rows dropped by `missing_target = drop`, in the summary and in the run record."""
from __future__ import annotations

import json
import shutil

from localrun import REPO, mlopsc
from mlopsc.runtime.state_folder import STATE_FOLDER

SPEC = """pipeline cars {
  source cars { csv = "cars.csv" }
  split cars_split from cars { test_size = 0.25  seed = 1 }
  train mpg_model on cars_split.train {
    target = Miles_per_Gallon
    features = [Cylinders, Displacement, Horsepower, Weight_in_lbs, Origin]
    estimator = sklearn.linear_model.Ridge
    missing_target = drop
  }
  evaluate mpg_eval { model = mpg_model  data = cars_split.test  metrics = [rmse, r2] }
}
"""


def test_a_column_that_is_mostly_numbers_and_rows_without_a_target_are_reported(tmp_path):
    shutil.copy(REPO / "tests" / "data" / "cars.csv", tmp_path / "cars.csv")
    (tmp_path / "cars.mlops").write_text(SPEC, encoding="utf-8")
    done = mlopsc("run", "cars.mlops", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.splitlines()
    (warning,) = [line for line in summary if line.startswith("  warning  cars: ")]
    assert "column 'Horsepower' is mostly numbers, but 1 of 39 values are not, e.g. 'ninety'" in warning
    (record_file,) = (tmp_path / STATE_FOLDER / "runs").glob("*.json")
    steps = json.loads(record_file.read_text())["steps"]
    assert steps["cars"]["result"]["warnings"] == [warning.removeprefix("  warning  cars: ")]
    # The three rows without a target fall on both sides of the split; together they are all three.
    dropped = {name: steps[name]["result"]["rows_without_target"] for name in ("mpg_model", "mpg_eval")}
    assert sum(dropped.values()) == 3
    notes = [line for line in summary if line.startswith("  note     ")]
    assert len(notes) == sum(1 for n in dropped.values() if n) and all("missing_target = drop" in n for n in notes)
