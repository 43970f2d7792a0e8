"""The state folder a run leaves beside the specs is never taken for a spec (issue 15: `make demo`
left `specs/.mlops/`, which `glob("*.mlops")` listed, and `make test` then failed to collect), and
a legacy `.mlops/` state folder keeps working in place.

One run (`quick.mlops`, no grid search) is shared: its state goes to `.mlops/`, as every run did
before the folder was renamed, so its MLflow store records absolute paths under `.mlops/`.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest
from localrun import HERE, copy_project, mlopsc, run_json, statuses
from mlopsc.compiler.spec_files import specs_in

SPECS = ["diabetes.mlops", "penguins.mlops", "quick.mlops", "wine_sql.mlops"]
NOTICE = "under its old name"


@pytest.fixture(scope="module")
def legacy_project(tmp_path_factory):
    """The three examples and quick.mlops, after a run that kept its state in `.mlops/`."""
    project = copy_project(tmp_path_factory.mktemp("legacy"))
    shutil.copy(HERE / "specs" / "quick.mlops", project)
    run_json("quick.mlops", "--state-dir", ".mlops", cwd=project)
    return project


def assert_only_the_specs_are_listed_and_checked(folder):
    assert [p.name for p in specs_in(folder)] == SPECS
    done = mlopsc("check", str(folder), cwd=folder)
    assert done.returncode == 0 and done.stderr.endswith("0 errors, 0 warnings in 4 files\n"), done.stderr
    done = mlopsc("fmt", "--check", str(folder), cwd=folder)     # quick.mlops is not in canonical layout
    assert sum(int(n) for n in re.findall(r"\d+", done.stderr.splitlines()[-1])) == 4, done.stderr


def test_state_folders_beside_the_specs_are_not_specs(legacy_project, tmp_path):
    copy = shutil.copytree(legacy_project, tmp_path / "copy", symlinks=True)
    shutil.copytree(copy / ".mlops", copy / ".mlopsc", symlinks=True)   # both names, each a run's state
    (copy / ".mlopsc" / "stray.mlops").write_text("not a spec of this folder\n")
    assert [p.name for p in copy.glob("*.mlops") if p.is_dir()] == [".mlops"]   # what the old listings took
    for folder in (legacy_project, copy):
        assert_only_the_specs_are_listed_and_checked(folder)


def test_a_legacy_state_folder_is_used_in_place_then_migrated_with_a_link(legacy_project):
    project = legacy_project
    done = mlopsc("run", "quick.mlops", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert set(statuses(json.loads(done.stdout)).values()) == {"cached"}      # the old cache, in place
    notices = [line for line in done.stderr.splitlines() if NOTICE in line]
    assert len(notices) == 1 and f"mv {project / '.mlops'} {project / '.mlopsc'}" in notices[0], done.stderr
    assert not (project / ".mlopsc").exists()

    # `lineage` reads the same store, and the lineage record under the paths it recorded.
    done = mlopsc("lineage", "quick-species", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lineage"]["pipeline"] == "quick"
    assert [line for line in done.stderr.splitlines() if NOTICE in line] == notices

    # The migration the notice prints: the link keeps the recorded absolute paths valid.
    (project / ".mlops").rename(project / ".mlopsc")
    (project / ".mlops").symlink_to(".mlopsc")
    done = mlopsc("lineage", "quick-species", "--json", cwd=project)
    assert done.returncode == 0 and NOTICE not in done.stderr, done.stderr
    assert json.loads(done.stdout)["lineage"]["pipeline"] == "quick"
    again = run_json("quick.mlops", cwd=project)
    assert set(statuses(again).values()) == {"cached"}
    assert again["state_dir"] == str(project / ".mlopsc")
