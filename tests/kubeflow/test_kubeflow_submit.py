"""`mlopsc submit --target kubeflow`: what a user sees when it cannot work. (Uploading and running
need a KFP API server, which these tests do not have: that path is exercised only against a real
cluster, see docs/backends/kubeflow.md.)"""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

MLOPSC = [sys.executable, "-c", "from mlopsc.backends.cli import main; main()"]


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: bound once by us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def submit(folder, *args):
    return subprocess.run([*MLOPSC, "submit", str(folder), "--target", "kubeflow", *args],
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture(scope="module")
def build_dir(built):
    return built["penguins"][0]


def test_an_unreachable_host_is_one_clear_message_and_exit_code(build_dir):
    host = f"http://127.0.0.1:{closed_port()}"
    done = submit(build_dir, "--host", host, "--experiment", "e2e")
    assert done.returncode == 5
    assert done.stderr.strip() == f"mlopsc: cannot reach Kubeflow Pipelines at {host}: connection refused"
    assert "Traceback" not in done.stdout + done.stderr


def test_no_host_is_a_usage_error(build_dir, monkeypatch):
    monkeypatch.delenv("MLOPSC_KFP_HOST", raising=False)
    done = submit(build_dir)
    assert done.returncode == 2
    assert "no Kubeflow Pipelines host: pass --host URL" in done.stderr


def test_a_folder_without_a_build_is_a_usage_error(tmp_path):
    done = submit(tmp_path, "--host", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert "holds no pipeline.yaml" in done.stderr


def test_params_are_typed_by_the_pipeline_before_anything_is_sent(build_dir):
    done = submit(build_dir, "--host", "http://127.0.0.1:9", "--param", "test_size=abc")
    assert done.returncode == 2 and "test_size is number_double" in done.stderr
    done = submit(build_dir, "--host", "http://127.0.0.1:9", "--param", "nope=1")
    assert done.returncode == 2 and "NAME one of: min_accuracy" in done.stderr


def test_submit_calls_the_installed_kfp_client_by_its_own_parameter_names():
    """No server here, so at least hold submit.py to the signatures of the kfp.Client it drives."""
    import ast
    import inspect

    import kfp
    from mlopsc.backends.kubeflow import submit as module

    tree = ast.parse(inspect.getsource(module))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "client"]
    assert len(calls) >= 9
    for call in calls:
        parameters = inspect.signature(getattr(kfp.Client, call.func.attr)).parameters
        assert {k.arg for k in call.keywords} <= set(parameters), call.func.attr
        assert len(call.args) <= len(parameters) - 1, call.func.attr
