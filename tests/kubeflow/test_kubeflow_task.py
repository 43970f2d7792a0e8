"""The component side (`mlopsc.backends.kubeflow.task`): what a pod's log shows when things go wrong."""
from __future__ import annotations

import subprocess
import sys


def run_in_pod_like_process(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mlopsc.backends.kubeflow import task\n" + code],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_step_config_the_runtime_cannot_read_ends_the_task_with_one_line():
    done = run_in_pod_like_process("task.run_step({'kind': 'nope', 'name': 'x'}, '{}', {}, {})")
    assert done.returncode == 5
    assert done.stderr.startswith("mlopsc: config: cannot read the step's config: ValidationError")
    assert "Traceback" not in done.stderr


def test_a_retrain_that_cannot_reach_kfp_names_the_host_and_pipeline():
    done = run_in_pod_like_process(
        "task.request_retrain('{\"retrain\": true}', '/nonexistent.yaml', 'penguins', 'http://127.0.0.1:9', '')")
    assert done.returncode == 5
    assert "mlopsc: retrain: cannot start a run of penguins at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_retrain_asked_means_no_call_to_kfp():
    done = run_in_pod_like_process(
        "import sys\nprint(task.request_retrain('{\"retrain\": false}', '', 'p', 'http://127.0.0.1:9', '') == '')\n"
        "print('kfp' in sys.modules)")
    assert done.returncode == 0 and done.stdout.splitlines()[-2:] == ["True", "False"]
