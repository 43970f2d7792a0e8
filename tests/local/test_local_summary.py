"""The summary `mlopsc run` prints after a run, from its run record (no run needed here; the
end-to-end tests see it printed)."""
from __future__ import annotations

from mlopsc.backends.local.progress import summary_lines


def record(**steps) -> dict:
    return {"pipeline": "cars", "run_id": "r1", "status": "ok", "duration": 1.0, "state_dir": ".mlops",
            "steps": {name: {"kind": kind, "status": "ok", "result": result}
                      for name, (kind, result) in steps.items()}}


def test_the_summary_shows_rows_dropped_and_warnings_per_step():
    lines = summary_lines(record(
        cars=("source", {"warnings": ["column 'Horsepower' is mostly numbers ..."]}),
        mpg_model=("train", {"rows": 27, "rows_without_target": 3,
                             "warnings": ["Objective did not converge"]}),
        mpg_eval=("evaluate", {"metrics": {"rmse": 2.5}, "rows_without_target": 0})))
    assert "  warning  cars: column 'Horsepower' is mostly numbers ..." in lines
    assert "  dropped  mpg_model: 3 row(s) without a target (missing_target = drop)" in lines
    assert "  warning  mpg_model: Objective did not converge" in lines
    assert not [line for line in lines if "mpg_eval" in line and "dropped" in line]   # none dropped, no line
