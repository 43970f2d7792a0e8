"""The local state folder beside a spec: `.mlopsc/` (the tool's name, as `.dvc/` and `.prefect/`).

It holds what runs on this machine keep: the local runner's artifacts, cache, run records and logs,
the default MLflow store (`mlflow.db`, `mlartifacts/`) and the Prefect backend's default storage
(`prefect/`). Every default that points there asks `state_folder(base_dir)`; this module is the one
place that spells the name.

The folder used to be `.mlops/`, a name that every `*.mlops` pattern (tests, editors, shell loops,
CI path filters) took for a spec. A `.mlops/` folder that exists beside a spec, with no `.mlopsc/`
beside it, is still used, read and written in place, and never moved: MLflow's SQLite store
records absolute artifact paths under it (each experiment's artifact location, each run's and
model version's artifact URI), so moving the folder would break the URIs of registered models.
Using it prints one line on stderr per process, with the safe migration: rename the folder and
leave a link under the old name, which keeps the recorded paths valid:

    mv .mlops .mlopsc && ln -s .mlopsc .mlops

Standard library only: generated local modules import this with `mlopsc[runtime]` alone.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

STATE_FOLDER = ".mlopsc"
LEGACY_STATE_FOLDER = ".mlops"
STATE_FOLDERS = (STATE_FOLDER, LEGACY_STATE_FOLDER)   # what spec listings skip

_told_about_legacy = False


def state_folder(base_dir: str | os.PathLike[str]) -> Path:
    """The state folder beside the specs in `base_dir`: `.mlopsc/`, or an existing legacy `.mlops/`
    folder when there is no `.mlopsc/`. Creates nothing."""
    folder = Path(base_dir) / STATE_FOLDER
    legacy = Path(base_dir) / LEGACY_STATE_FOLDER
    if not os.path.lexists(folder) and legacy.is_dir():
        _tell_about_legacy(legacy)
        return legacy
    return folder


def serving_log_folder(base_dir: str | os.PathLike[str], registry: str) -> Path:
    """Where `mlopsc serve` logs the predictions of a registered model by default, and where a
    served source (`source live { served = DEPLOY }`) reads them: `<state folder>/serving/<registry>/`."""
    return state_folder(base_dir) / "serving" / registry


def _tell_about_legacy(legacy: Path) -> None:
    global _told_about_legacy
    if _told_about_legacy:
        return
    _told_about_legacy = True
    renamed = legacy.with_name(STATE_FOLDER)
    print(f"mlopsc: using the state folder {legacy} under its old name; to migrate, rename it and "
          f"leave a link so that the paths its MLflow store recorded stay valid: "
          f"mv {shlex.quote(str(legacy))} {shlex.quote(str(renamed))} && "
          f"ln -s {STATE_FOLDER} {shlex.quote(str(legacy))}", file=sys.stderr)
