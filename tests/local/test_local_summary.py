"""The summary `mlopsc run` prints after a run, from its run record (no run needed here; the
end-to-end tests see it printed)."""
from __future__ import annotations

from mlopsc.backends.local.progress import summary_lines


def record(**steps) -> dict:
    return {"pipeline": "cars", "run_id": "r1", "status": "ok", "duration": 1.0, "state_dir": ".mlops",
            "steps": {name: {"kind": kind, "status": "ok", "result": result}
                      for name, (kind, result) in steps.items()}}


def test_the_summary_shows_each_steps_notes_and_warnings():
    lines = summary_lines(record(
        cars=("source", {"warnings": ["column 'Horsepower' is mostly numbers ..."]}),
        mpg_model=("train", {"rows": 27, "rows_without_target": 3, "notes": ["3 row(s) ... dropped"],
                             "warnings": ["Objective did not converge"]}),
        mpg_eval=("evaluate", {"metrics": {"rmse": 2.5}, "rows_without_target": 0})))
    assert "  warning  cars: column 'Horsepower' is mostly numbers ..." in lines
    assert "  note     mpg_model: 3 row(s) ... dropped" in lines
    assert "  warning  mpg_model: Objective did not converge" in lines
    assert [line for line in lines if "mpg_eval" in line] == ["  metrics  mpg_eval: rmse 2.5000"]
