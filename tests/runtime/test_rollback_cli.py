"""`mlopsc rollback`: deploy twice, roll back, check the registry; errors exit 1 without a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlopsc.compiler import ir
from mlopsc.runtime import execute, tracking
from mlopsc.runtime.cli import lineage, rollback
from mlopsc.runtime.state_folder import STATE_FOLDER
from release_fixtures import fit_model, penguins, registry_name


@pytest.fixture
def deployed_three(ctx, out, tmp_path) -> str:
    """A registry with versions 1, 2, 3 deployed in turn: champion 3, previous 2."""
    name = registry_name()
    step = ir.Deploy(name="species_service", model=ir.Ref(step="species_model"), registry=name)
    for depth in (1, 2, 3):
        model = fit_model(ctx, penguins(), str(tmp_path / f"m{depth}"), max_depth=depth)
        execute(step, {"model": model["outputs"]["model"]["uri"]}, out(step), ctx)
    return name


def holders(ctx, name: str) -> dict[str, str]:
    aliases = tracking.client(ctx).get_registered_model(name).aliases
    return {alias: str(version) for alias, version in aliases.items()}


def test_rollback_restores_the_previous_version_step_by_step(ctx, deployed_three):
    name, runner = deployed_three, CliRunner()
    assert holders(ctx, name) == {"champion": "3", "previous": "2"}
    first = runner.invoke(rollback, [name, "--tracking-uri", ctx.tracking_uri])
    assert first.exit_code == 0, first.output
    assert f"{name}@champion: version 3 -> version 2" in first.output
    assert holders(ctx, name) == {"champion": "2", "previous": "1"}
    second = runner.invoke(rollback, [name, "--tracking-uri", ctx.tracking_uri])
    assert "version 2 -> version 1" in second.output and "no version holds 'previous' any more" in second.output
    assert holders(ctx, name) == {"champion": "1"}
    third = runner.invoke(rollback, [name, "--tracking-uri", ctx.tracking_uri])
    assert third.exit_code == 1 and "nothing to roll back to" in third.output
    assert holders(ctx, name) == {"champion": "1"}
    assert tracking.client(ctx).get_model_version(name, "3").tags["mlopsc.rolled_back.champion"] == "true"


def test_rollback_of_an_unknown_model_suggests_names_through_the_real_entry_point(ctx, deployed_three, tmp_path):
    """The installed `mlopsc` command, in a folder with its own store: exit 1, a did-you-mean."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": ctx.tracking_uri}
    mlopsc = Path(sys.executable).parent / "mlopsc"
    done = subprocess.run([str(mlopsc), "rollback", deployed_three[:-1] + "zz"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert f"did you mean '{deployed_three}'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_rollback_without_a_store_here_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(rollback, ["penguins-species"])
    assert shown.exit_code == 1 and "no MLflow store here" in shown.output
    assert not (tmp_path / STATE_FOLDER).exists()   # a read-only command creates no empty store


@pytest.mark.parametrize("uri", ["bogus://nowhere", "sqlite:///{tmp}/a_file/mlflow.db"])
def test_a_store_that_cannot_be_opened_is_one_message_and_exit_1(tmp_path, uri):
    (tmp_path / "a_file").write_text("")            # no folder can be made where a file is
    uri = uri.format(tmp=tmp_path)
    shown = CliRunner().invoke(lineage, ["penguins-species", "--tracking-uri", uri])
    assert shown.exit_code == 1, shown.output
    assert isinstance(shown.exception, SystemExit)     # one message, not an escaped exception
    assert "the MLflow store" in shown.output
