"""`mlopsc serve` refuses what it cannot serve with one message, and the server package imports
neither the compiler's parser nor lark or jinja2 (the Kubeflow image runs it)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import REPO
from mlopsc.backends.cli import cli


def serve(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["serve", *args], env=env)


def test_serve_needs_exactly_one_of_a_spec_and_a_model():
    assert serve().exit_code == 2
    both = serve(str(REPO / "specs" / "penguins.mlops"), "--model", "x")
    assert both.exit_code == 2 and "not both" in both.output


def test_an_unknown_model_is_one_message(store):
    result = serve("--model", "penguins-nope", "--tracking-uri", store.uri)
    assert result.exit_code == 1
    assert "no registered model named 'penguins-nope'" in result.output


def test_an_unknown_alias_is_one_message(store):
    result = serve("--model", f"{store.name}@nobody", "--tracking-uri", store.uri)
    assert result.exit_code == 1 and "has no alias 'nobody'" in result.output


def test_a_spec_without_the_named_deploy(tmp_path):
    spec = REPO / "specs" / "penguins.mlops"
    result = serve(str(spec), "--deploy", "species_servce")
    assert result.exit_code == 1 and "did you mean 'species_service'" in result.output
    bare = tmp_path / "bare.mlops"
    bare.write_text(f'pipeline bare {{ source s {{ csv = "{REPO / "specs" / "data" / "penguins.csv"}" }} }}\n')
    result = serve(str(bare))
    assert result.exit_code == 1 and "has no deploy step" in result.output


def test_a_missing_store_is_not_created(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    result = serve("--model", "anything")
    assert result.exit_code == 1 and "no MLflow store" in result.output
    assert not (tmp_path / ".mlopsc" / "mlflow.db").exists()


def test_an_unset_token_variable_is_a_usage_error(store, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    result = serve("--model", store.name, "--tracking-uri", store.uri, "--token-env", "NO_SUCH_TOKEN")
    assert result.exit_code == 2 and "NO_SUCH_TOKEN" in result.output


@pytest.mark.parametrize("module", ["app", "cli", "watcher", "prediction_log", "batching"])
def test_the_server_imports_no_compiler_parser(module):
    code = (f"import sys, mlopsc.runtime.serving.{module}; "
            "bad = {'lark', 'jinja2', 'mlopsc.compiler.parser', 'mlopsc.compiler.transformer'} & set(sys.modules); "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_importing_the_package_is_cheap():
    code = ("import sys, mlopsc.runtime.serving; "
            "heavy = {'pandas', 'mlflow', 'sklearn', 'starlette', 'uvicorn', 'prometheus_client'} & set(sys.modules); "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_a_start_on_a_sqlite_store_does_not_import_mlflow(store):
    """Most of a start was MLflow's import: on a SQLite store with local files the server reads the
    alias, finds the version's folder and loads its model without it, and gets the same model."""
    code = ("import sys; from mlopsc.runtime.serving.cli import resolve; "
            "from mlopsc.runtime.serving.model import load_version; "
            f"name, alias, version = resolve({store.uri!r}, {store.name!r}); "
            f"model = load_version({store.uri!r}, name, version); "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'; "
            "print(alias, version, type(model.model[-1]).__name__, model.source)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    alias, version, estimator, source = done.stdout.split()
    assert (alias, version, estimator) == ("champion", "1", "RandomForestClassifier")
    assert source.startswith("file://") and source.endswith("registered_model")
