"""How a run ends when something stops it: a failing check (exit 3), a failing gate (exit 4), a
step error (exit 5), a timeout; each message names the step and its spec line, the registry is
left untouched, and no Python traceback reaches the user."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from localrun import champion, clean_env, mlopsc, ran, run_json, statuses
from mlopsc.runtime.state_folder import STATE_FOLDER
from report_page import ReportPage


def test_failing_check_stops_the_run_with_exit_3_before_training(quick):
    spec = quick / "quick.mlops"
    spec.write_text(spec.read_text().replace("rows >= 100", "rows >= 100000"))
    done = mlopsc("run", "quick.mlops", cwd=quick)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "step penguins_quality (quick.mlops:10:3)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    record = run_json("quick.mlops", cwd=quick, expect=3)
    assert statuses(record)["penguins_quality"] == "failed"
    assert statuses(record)["species_model"] == "skipped"
    # A stopping verdict is never cached: the check runs again next time.
    assert record["steps"]["penguins_quality"]["reason"] == "no cache entry"
    assert champion(quick / STATE_FOLDER, "quick-species") is None


def test_failing_gate_exits_4_deploys_nothing_and_is_reevaluated_next_run(quick):
    spec = quick / "quick.mlops"
    # The island alone cannot tell the species apart (Adelie live on all three): accuracy < 0.8.
    spec.write_text(spec.read_text().replace(
        "features  = [bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, island, sex]",
        "features  = [island]"))
    record = run_json("quick.mlops", cwd=quick, expect=4)
    assert statuses(record)["release"] == "failed"
    assert statuses(record)["species_service"] == "skipped"
    assert "accuracy" in record["steps"]["release"]["error"]["message"]
    assert champion(quick / STATE_FOLDER, "quick-species") is None
    gate = ReportPage.read(record["report"]).sections["gate"]     # the run's report says so too
    assert gate.headings == ["release failed"] and "Nothing was deployed" in gate.text

    done = mlopsc("run", "quick.mlops", cwd=quick)
    assert done.returncode == 4
    assert "step release (quick.mlops:26:3): the gate did not pass" in done.stdout
    assert "--force-gate" in done.stdout
    # The decision report of the failed gate is kept (outside the cache) and its path printed.
    decision = next(line.split()[-1] for line in done.stdout.splitlines() if line.strip().startswith("decision"))
    assert "/failed-" in decision and '"passed": false' in Path(decision).read_text()

    forced = run_json("quick.mlops", "--force-gate", cwd=quick)
    assert ran(forced) == {"release", "species_service"}   # training came from the cache
    assert forced["steps"]["release"]["result"]["decision"]["forced"] is True
    assert ReportPage.read(forced["report"]).sections["gate"].headings == ["release forced"]
    version = champion(quick / STATE_FOLDER, "quick-species")
    assert version is not None and str(version.version) == "1"


def test_step_error_exits_5_naming_the_step_and_its_line(quick, tmp_path):
    (quick / "data" / "penguins.csv").unlink()
    store = f"sqlite:///{tmp_path / 'elsewhere.db'}"     # MLFLOW_TRACKING_URI is honoured
    done = mlopsc("run", "quick.mlops", cwd=quick, env=clean_env(MLFLOW_TRACKING_URI=store))
    assert done.returncode == 5, done.stdout + done.stderr
    assert "step penguins (quick.mlops:8:" in done.stdout and "penguins.csv" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert f"mlflow ui --backend-store-uri {store}" in done.stdout
    assert (tmp_path / "elsewhere.db").exists() and not (quick / STATE_FOLDER / "mlflow.db").exists()


def test_timeout_kills_the_step_and_retries_it(quick):
    spec = quick / "quick.mlops"
    # A training step that cannot finish in 10 ms: each attempt is killed, then retried once.
    spec.write_text(spec.read_text().replace("max_iter = 500 }", "max_iter = 500 }\n    timeout = 0.01  retries = 1"))
    record = run_json("quick.mlops", cwd=quick, expect=5)
    train = record["steps"]["species_model"]
    assert train["status"] == "failed" and train["attempts"] == 2
    assert "timed out after 0.01 s" in train["error"]["message"]
    assert not list((quick / STATE_FOLDER / "cache").glob("species_model/*.json"))


def test_a_timeout_counts_from_when_the_worker_begins_the_step(quick):
    spec = quick / "quick.mlops"
    # The first step begins once its worker is forked (pandas, scikit-learn and MLflow imported)
    # and has opened the pipeline's MLflow run: 7 to 15 s on the shared 2-core test machine. The
    # source itself reads a small CSV: 0.1 s, 0.5 s when that machine is busy, so a 1 s timeout was
    # a margin of 2; 3 s is one of 6, and still shorter than the wait.
    spec.write_text(spec.read_text().replace('filter = "year < 2009" }', 'filter = "year < 2009"  timeout = 3 }'))
    record = run_json("quick.mlops", cwd=quick)
    source = record["steps"]["penguins"]
    waited = source["started_at"] - record["started"]
    assert source["status"] == "ok" and source["attempts"] == 1, "the wait does not count against the timeout"
    assert source["duration"] < min(3, waited), "the wait is not in the step's duration"


def test_a_second_run_on_the_same_state_folder_is_refused(quick):
    import fcntl

    state = quick / STATE_FOLDER
    state.mkdir()
    with open(state / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)    # as a running `mlopsc run` holds it
        done = mlopsc("run", "quick.mlops", cwd=quick)
    assert done.returncode == 2
    assert "another mlopsc run is using" in done.stderr
    assert not (state / "runs").exists()


def test_a_state_folder_that_cannot_be_created_is_a_usage_error(quick):
    (quick / "a_file").write_text("")
    done = mlopsc("run", "quick.mlops", "--state-dir", "a_file/state", cwd=quick)
    assert done.returncode == 2
    assert "as the state folder" in done.stderr and "Traceback" not in done.stderr


def test_an_mlflow_store_that_cannot_be_opened_is_one_message_and_exit_5(quick):
    done = mlopsc("run", "quick.mlops", cwd=quick, env=clean_env(MLFLOW_TRACKING_URI="bogus://nowhere"))
    assert done.returncode == 5, done.stdout + done.stderr
    assert "cannot open the pipeline's MLflow run" in done.stdout and "bogus://nowhere" in done.stdout
    assert "internal error" not in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
    # The run record says the run failed (not that it was interrupted) and why.
    record = json.loads(next((quick / STATE_FOLDER / "runs").glob("*.json")).read_text())
    assert (record["status"], record["exit_code"]) == ("failed", 5)
    assert "bogus://nowhere" in record["error"]["found"]
    assert {s["status"] for s in record["steps"].values()} <= {"not_run", "cached"}


def test_an_unreachable_tracking_server_fails_at_once_not_after_mlflow_retries(quick):
    with socket.socket() as closed:          # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    started = time.monotonic()
    record = run_json("quick.mlops", cwd=quick, env=clean_env(MLFLOW_TRACKING_URI=uri), expect=5)
    assert time.monotonic() - started < 30, "MLflow's client retries for minutes; the runner must not"
    assert record["status"] == "failed" and "cannot reach the MLflow tracking server" in record["error"]["message"]
    assert record["error"]["found"] == uri
