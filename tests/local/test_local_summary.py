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


def retrain(status: str = "ok", **steps) -> dict:
    return {"status": status, "steps": {name: {"kind": kind, "status": state, "result": result, "error": error}
                                        for name, (kind, state, result, error) in steps.items()}}


RELEASE = {"registry": "penguins-species", "version": "3", "alias": "champion"}


def test_a_retrains_outcome_says_what_it_deployed_or_why_nothing():
    from mlopsc.backends.local.session import retrain_outcome

    deployed = retrain(model=("train", "ok", {}, None), svc=("deploy", "ok", RELEASE, None))
    assert retrain_outcome(deployed) == "deployed penguins-species version 3 (alias champion)"
    all_cached = retrain(model=("train", "cached", {}, None), svc=("deploy", "cached", RELEASE, None))
    assert retrain_outcome(all_cached) == ("training data and config unchanged since penguins-species version 3; "
                                           "nothing new to deploy until the training data changes")
    same_model = retrain(model=("train", "ok", {}, None), svc=("deploy", "ok", {**RELEASE, "unchanged": True}, None))
    assert retrain_outcome(same_model) == "the retrained model is identical to penguins-species version 3; nothing new to deploy"
    gate = retrain("failed", release=("gate", "failed", None, {"type": "failed", "reason": "gate"}),
                   svc=("deploy", "skipped", None, None))
    assert retrain_outcome(gate) == "the gate release did not pass: nothing deployed"
    broken = retrain("failed", model=("train", "failed", None, {"type": "error", "reason": None}))
    assert retrain_outcome(broken) == "step model failed: nothing deployed"
    assert retrain_outcome(retrain(model=("train", "ok", {}, None))) == \
        "the pipeline has no deploy step: the retrained model is not deployed"


def test_the_summary_says_what_the_retrain_came_to():
    lines = summary_lines({**record(drift=("monitor", {"retrain": True, "reasons": ["psi(x) is 3, > 0.2"]})),
                           "retrain": {"run_id": "r2", "status": "ok", "ran": [], "outcome": "nothing new"}})
    assert lines[-2:] == ["  retrain  started run r2 of the training pipeline: ok, 0 step(s) ran",
                          "  retrain  nothing new"]
