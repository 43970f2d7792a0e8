"""Helpers of the local runner's tests: real runs of the `mlopsc` command in subprocesses,
on copies of the example specs and data in temp folders (runs never write into the repo), with
the MLflow store in the copy's state folder (`.mlopsc/`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlopsc.compiler.spec_files import specs_in

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
HERE = Path(__file__).resolve().parent
MLOPSC = Path(sys.executable).parent / "mlopsc"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPSC_"))}
    env.update(extra)
    return env


def copy_project(dest: Path, spec: Path | None = None) -> Path:
    """Copy specs/data and the spec(s) into dest; return dest."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SPECS / "data", dest / "data", dirs_exist_ok=True)
    for path in [spec] if spec else specs_in(SPECS):
        shutil.copy(path, dest / path.name)
    return dest


def example_env(spec: str, project: Path) -> dict[str, str]:
    """The SQL example reads WINE_DB_URL: build its SQLite file with the examples' own script."""
    if "sql" not in spec:
        return clean_env()
    db = project / "wine.db"
    subprocess.run([sys.executable, str(SPECS / "data" / "make_data.py"), "--wine-db", str(db)],
                   check=True, capture_output=True, timeout=120)
    return clean_env(WINE_DB_URL=f"sqlite:///{db}")


def mlopsc(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLOPSC), *args], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_json(*args: str, cwd: Path, env: dict[str, str] | None = None,
             expect: int = 0) -> dict:
    """`mlopsc run ... --json` and its run record; fails with the output when the exit status differs."""
    done = mlopsc("run", *args, "--json", cwd=cwd, env=env)
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def statuses(record: dict) -> dict[str, str]:
    return {name: step["status"] for name, step in record["steps"].items()}


def ran(record: dict) -> set[str]:
    return {name for name, step in record["steps"].items() if step["status"] == "ok"}


def champion(state_dir: Path, registry: str):
    """The registered version holding `champion`, or None; read with MLflow's own client."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = f"sqlite:///{state_dir / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    try:
        return client.get_model_version_by_alias(registry, "champion")
    except MlflowException:
        return None
