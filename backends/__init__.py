"""Backends: one generator plus its templates per orchestrator.

TARGETS maps a `--target` name to the generator class, by import path so that choosing one
target never imports another's SDK.
"""
TARGETS: dict[str, str] = {
    "local": "mlopsc.backends.local.generator:LocalGenerator",
    "prefect": "mlopsc.backends.prefect.generator:PrefectGenerator",
    "kubeflow": "mlopsc.backends.kubeflow.generator:KubeflowGenerator",
    "github-actions": "mlopsc.backends.github_actions.generator:GitHubActionsGenerator",
}
