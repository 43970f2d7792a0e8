"""A cached gate that compared with the champion is reused only while that comparison still holds:
the champion is the one the gate saw, or the very model it judged (deployed since). Any other
change of champion makes the next run judge the candidate again; a rollback to the version the
gate saw is no change."""
from __future__ import annotations

import pytest
from localrun import HERE, champion, copy_project, mlopsc, ran, run_json, statuses
from mlopsc.runtime.state_folder import STATE_FOLDER

RULE = "require accuracy >= params.min_accuracy"


@pytest.fixture
def project(tmp_path):
    project = copy_project(tmp_path / "champion", HERE / "specs" / "quick.mlops")
    spec = project / "quick.mlops"
    spec.write_text(spec.read_text().replace(RULE, RULE + "\n    require f1_macro >= champion.f1_macro - 0.01"))
    return project


def _client(project):
    import mlflow

    uri = f"sqlite:///{project / STATE_FOLDER / 'mlflow.db'}"
    return mlflow.MlflowClient(uri, registry_uri=uri)


def test_a_new_champion_from_elsewhere_makes_the_cached_gate_judge_again(project):
    first = run_json("quick.mlops", cwd=project)
    assert str(champion(project / STATE_FOLDER, "quick-species").version) == "1"

    # Our own model is the champion now: the gate's decision still holds, nothing runs again.
    second = run_json("quick.mlops", cwd=project)
    assert ran(second) == set() and statuses(second)["release"] == "cached"

    # Someone else's version 2 becomes the champion, with an f1 no candidate can reach.
    client = _client(project)
    ours = client.get_model_version("quick-species", "1")
    other = client.create_model_version("quick-species", ours.source, run_id=ours.run_id,
                                        tags={"mlopsc.model_sha256": "0" * 64, "mlopsc.metric.f1_macro": "2.0"})
    client.set_registered_model_alias("quick-species", "champion", other.version)

    plan = mlopsc("plan", "quick.mlops", cwd=project)
    assert "quick-species@champion changed since the gate ran (none -> version 2)" in plan.stdout, plan.stdout

    third = run_json("quick.mlops", cwd=project, expect=4)
    assert ran(third) == set() and statuses(third)["release"] == "failed"
    assert "champion version 2" in third["steps"]["release"]["error"]["message"]
    assert str(champion(project / STATE_FOLDER, "quick-species").version) == "2"   # untouched
    assert first["steps"]["release"]["result"]["decision"]["passed"] is True


def test_a_rollback_is_not_undone_by_the_next_unchanged_run(project):
    run_json("quick.mlops", cwd=project)                                  # version 1
    newer = run_json("quick.mlops", "--param", "test_size=0.3", cwd=project)
    assert newer["steps"]["species_service"]["result"]["version"] == "2"

    done = mlopsc("rollback", "quick-species", "--tracking-uri",
                  f"sqlite:///{project / STATE_FOLDER / 'mlflow.db'}", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(champion(project / STATE_FOLDER, "quick-species").version) == "1"

    # The gate compared version 2's model with version 1, which is the champion again: its
    # decision and the deploy are reused, and version 2 is not promoted back.
    again = run_json("quick.mlops", "--param", "test_size=0.3", cwd=project)
    assert ran(again) == set()
    assert str(champion(project / STATE_FOLDER, "quick-species").version) == "1"
    # ...and the summary says who serves now, not the version the cached deploy once promoted.
    release = again["steps"]["species_service"]["result"]
    assert release["version"] == "2" and release["alias_now"] == "version 1"
    assert any("now held by version 1" in w and "--only species_service --no-cache" in w
               for w in release["warnings"]), release
