"""The state folder beside a spec: `.mlopsc/`, or a legacy `.mlops/` used in place with one line."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlopsc.runtime import state_folder as module
from mlopsc.runtime.state_folder import state_folder


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setattr(module, "_told_about_legacy", False)   # the notice is once per process


def test_a_fresh_folder_gets_mlopsc_and_nothing_is_created(tmp_path, capsys):
    assert state_folder(tmp_path) == tmp_path / ".mlopsc"
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().err == ""


def test_a_legacy_folder_is_used_in_place_with_one_line(tmp_path, capsys):
    (tmp_path / ".mlops").mkdir()
    (tmp_path / ".mlops" / "mlflow.db").write_bytes(b"")
    assert state_folder(tmp_path) == tmp_path / ".mlops"
    assert state_folder(tmp_path) == tmp_path / ".mlops"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert f"using the state folder {tmp_path / '.mlops'} under its old name" in lines[0]
    legacy, renamed = tmp_path / ".mlops", tmp_path / ".mlopsc"
    assert f"mv {legacy} {renamed} && ln -s .mlopsc {legacy}" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mlops"]       # nothing moved or created


@pytest.mark.parametrize("present", [[".mlopsc"], [".mlopsc", ".mlops"], ["file .mlops"]])
def test_mlopsc_wins_and_a_file_named_mlops_is_no_state_folder(tmp_path, capsys, present):
    for name in present:
        if name.startswith("file "):
            (tmp_path / name.removeprefix("file ")).write_text("pipeline p {}\n")
        else:
            (tmp_path / name).mkdir()
    assert state_folder(tmp_path) == tmp_path / ".mlopsc"
    assert capsys.readouterr().err == ""


def test_a_migrated_folder_with_a_link_under_the_old_name_is_the_new_one(tmp_path, capsys):
    (tmp_path / ".mlopsc").mkdir()
    (tmp_path / ".mlops").symlink_to(".mlopsc")
    assert state_folder(tmp_path) == tmp_path / ".mlopsc"
    assert capsys.readouterr().err == ""


def test_the_tracking_store_and_the_prefect_storage_follow_it_with_one_line_per_process(tmp_path):
    (tmp_path / ".mlops").mkdir()
    code = ("import sys; from mlopsc.runtime import RunContext, tracking; "
            "from mlopsc.backends.prefect.runner import default_storage; "
            "spec = sys.argv[1]; "
            "print(tracking.tracking_uri(RunContext(pipeline='p', run_id='r', spec_path=spec))); "
            "print(default_storage(spec))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPSC_"))}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.mlops")], capture_output=True,
                          text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"sqlite:///{tmp_path / '.mlops' / 'mlflow.db'}",
                                        str(tmp_path / ".mlops" / "prefect")]
    assert len(done.stderr.splitlines()) == 1 and "under its old name" in done.stderr
