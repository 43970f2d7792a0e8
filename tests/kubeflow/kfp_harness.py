"""Helpers of the Kubeflow backend tests: build every example once, run a compiled YAML under
kfp.local and a spec under the local runner, each in its own process with its own MLflow store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlopsc.compiler.spec_files import specs_in

REPO = Path(__file__).resolve().parents[2]
SPECS = specs_in(REPO / "specs")
GOLDEN = REPO / "tests" / "golden" / "kubeflow"
KFP_LOCAL_RUN = Path(__file__).with_name("kfp_local_run.py")


def build(spec: Path | str, options: dict[str, Any] | None = None):
    """(files, diagnostics) of `mlopsc build SPEC --target kubeflow`, in process."""
    from mlopsc.backends.kubeflow.generator import KubeflowGenerator
    from mlopsc.compiler import load

    generator = KubeflowGenerator(load(str(spec)), options or {})
    files = generator.generate()
    return files, generator.diagnostics


def build_text(text: str, folder: Path, name: str = "spec.mlops"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return build(path)


# ---------------------------------------------------------------- environments


def env_refs(spec: Path) -> list[str]:
    """The environment variables the spec's env() / secret() references read at run time."""
    from mlopsc.backends.base import references
    from mlopsc.compiler import load
    from mlopsc.runtime.params import env_name

    return sorted({env_name(ref) for step in load(str(spec)).pipeline.steps for ref in references(step)})


def _wine_db_url(folder: Path) -> str:
    sys.path.insert(0, str(REPO / "specs" / "data"))
    try:
        from make_data import write_wine_db
    finally:
        sys.path.pop(0)
    return f"sqlite:///{write_wine_db(folder / 'wine.db')}"


# How a test gives a value to a variable an example reads. The runners' subprocesses inherit it:
# kfp.local starts each task with this process's environment (SubprocessRunner).
TEST_VALUES = {"WINE_DB_URL": _wine_db_url}


def run_env(spec: Path, folder: Path) -> dict[str, str]:
    """A clean environment for one run: its own MLflow store, the spec's variables, no proxies."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPSC_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    env["GIT_PYTHON_REFRESH"] = "quiet"
    for name in env_refs(spec):
        if name not in TEST_VALUES:
            pytest.fail(f"{spec.name} reads ${name}: add a test value for it in tests/kubeflow/conftest.py")
        env[name] = TEST_VALUES[name](folder)
    return env


# ---------------------------------------------------------------- runners


def run_kfp_local(package: Path, root: Path, arguments: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Execute a compiled pipeline YAML under kfp.local in a subprocess. Returns
    {"ok", "error", "tasks", "results": {step: StepResult}, "log"}."""
    done = subprocess.run([sys.executable, str(KFP_LOCAL_RUN), str(package), str(root), json.dumps(arguments)],
                          capture_output=True, text=True, check=False, env=env, timeout=600)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(f"kfp.local harness failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    report = json.loads(lines[-1])
    report["log"] = done.stdout
    report["results"] = {}
    for task in report["tasks"].values():
        text = task["parameters"].get("Output")
        if text:
            result = json.loads(text)
            if isinstance(result, dict) and "step" in result:
                report["results"][result["step"]] = result
    return report


def run_local(spec: Path, state: Path, env: dict[str, str], *args: str, command: str = "run") -> tuple[int, dict[str, Any], str]:
    """`mlopsc run SPEC --json` (or `monitor`) in a subprocess: (exit code, run record, stderr)."""
    code = "from mlopsc.backends.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, command, str(spec), "--json", "--state-dir", str(state), *args],
                          capture_output=True, text=True, check=False, env=env, timeout=600)
    try:
        record = json.loads(done.stdout)
    except ValueError:
        record = {}
    return done.returncode, record, done.stderr
