"""kill -9 of the runner while a step runs, then resume: completed steps are cache hits, the killed
step left no cache entry or final artifact, and its worker did not outlive the runner."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from localrun import MLOPSC, SPECS, clean_env, copy_project, ran, run_json, statuses
from mlopsc.runtime.state_folder import STATE_FOLDER


def _record(state: Path) -> dict | None:
    runs = list((state / "runs").glob("*.json")) if (state / "runs").is_dir() else []
    return json.loads(runs[0].read_text()) if runs else None


def _descendants(pid: int) -> list[int]:
    """The runner's zygote and the workers it forked (and what they started)."""
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_during_training_then_resume(tmp_path):
    project = copy_project(tmp_path / "p", SPECS / "penguins.mlops")
    state = project / STATE_FOLDER
    runner = subprocess.Popen([str(MLOPSC), "run", "penguins.mlops"], cwd=project, env=clean_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            record = _record(state)
            if record and record["steps"]["species_model"]["status"] == "running":
                break
            assert runner.poll() is None, "the run ended before training started"
            time.sleep(0.1)
        else:
            raise AssertionError("training never started")
        time.sleep(1.5)                          # well inside the ~10 s grid search
        workers = _descendants(runner.pid)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    finally:
        if runner.poll() is None:
            runner.kill()

    # Workers notice their runner is gone and end themselves (and what they started).
    assert len(workers) >= 2, "a zygote and at least one worker"
    for _ in range(50):
        if not any(_alive(pid) for pid in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)

    killed = _record(state)
    assert killed["status"] == "running" and killed["steps"]["species_model"]["status"] == "running"
    assert not list((state / "cache" / "species_model").glob("*.json"))
    assert not [p for p in (state / "artifacts" / "species_model").iterdir() if not p.name.startswith(".")]

    resumed = run_json("penguins.mlops", cwd=project)
    assert {n for n, s in statuses(resumed).items() if s == "cached"} == {
        "penguins", "penguins_quality", "penguins_split"}
    assert ran(resumed) == {"species_model", "species_eval", "release", "species_service"}
    assert not list((state / "artifacts" / "species_model").glob(".staging-*"))
    assert os.path.exists(resumed["steps"]["species_model"]["result"]["outputs"]["model"]["uri"])
