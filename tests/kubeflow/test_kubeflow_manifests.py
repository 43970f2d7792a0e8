"""The KServe InferenceService and recurring-run manifests. Neither schema is available offline (the
KServe CRD and KFP's API are not installed here), so these are structural checks: the fields
KServe and `kfp.Client.create_recurring_run` read, with the values the spec gave."""
from __future__ import annotations

import inspect
import re

import pytest
import yaml
from kfp_harness import SPECS

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load_all(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_one_inference_service_per_deploy_serving_the_registered_mlflow_model(spec, built):
    from kubernetes.utils.quantity import parse_quantity
    from mlopsc.compiler import ir, load

    _, files, _ = built[spec.stem]
    deploys = [s for s in load(str(spec)).pipeline.steps if isinstance(s, ir.Deploy)]
    if not deploys:
        assert "kserve.yaml" not in files
        return
    services = load_all(files["kserve.yaml"])
    assert len(services) == len(deploys)
    for deploy, service in zip(deploys, services):
        assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
        assert DNS_1123.match(service["metadata"]["name"]) and len(service["metadata"]["name"]) <= 63
        assert service["metadata"]["annotations"]["mlopsc.io/registered-model"] == deploy.registry
        assert service["metadata"]["annotations"]["mlopsc.io/alias"] == deploy.alias
        predictor = service["spec"]["predictor"]
        serving = deploy.serving or ir.Serving()
        assert predictor["minReplicas"] == predictor["maxReplicas"] == serving.replicas
        model = predictor["model"]
        assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v2"
        assert re.fullmatch(r"\$\{MODEL_URI_[A-Z0-9_]+\}", model["storageUri"])   # filled at apply time
        assert model["storageUri"][2:-1] in files["kserve.yaml"].split("export ", 1)[1]  # documented command
        for section in model.get("resources", {}).values():
            for quantity in section.values():
                parse_quantity(quantity)          # a valid Kubernetes quantity
        if serving.cpu is not None:
            assert parse_quantity(model["resources"]["limits"]["cpu"]) == parse_quantity(str(serving.cpu))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_recurring_runs_name_a_built_pipeline_and_a_kfp_cron(spec, built):
    import kfp
    from mlopsc.compiler import ir, load

    _, files, _ = built[spec.stem]
    pipeline = load(str(spec)).pipeline
    scheduled = [pipeline.schedule] if pipeline.schedule else []
    scheduled += [s.schedule for s in pipeline.steps if isinstance(s, ir.Monitor) and s.schedule]
    if not scheduled:
        assert "recurring_run.yaml" not in files
        return
    (definition,) = load_all(files["recurring_run.yaml"])
    runs = definition["runs"]
    assert [r["schedule"] for r in runs] == scheduled
    accepted = set(inspect.signature(kfp.Client.create_recurring_run).parameters)
    for run in runs:
        assert run["cron"] == "0 " + run["schedule"] and len(run["cron"].split()) == 6   # KFP has seconds
        package = next(yaml.safe_load_all(files[run["package"]]))
        assert package["pipelineInfo"]["name"] == run["pipeline"]
        assert DNS_1123.match(run["name"])
        # what submit passes on, by the client's own parameter names
        assert {"cron_expression", "max_concurrency", "no_catchup", "enabled", "pipeline_id", "version_id",
                "job_name", "experiment_id"} <= accepted


def test_a_serving_port_kserve_cannot_use_is_reported(tmp_path):
    from kfp_harness import REPO, build_text

    original = (REPO / "specs" / "penguins.mlops").read_text()
    anchor = 'registry = "penguins-species"'
    assert anchor in original
    text = original.replace(anchor, anchor + "\n    serving { port = 9000 }")
    serving_line = next(n for n, line in enumerate(text.splitlines(), 1) if "serving {" in line)
    (tmp_path / "data").symlink_to(REPO / "specs" / "data")
    _, diagnostics = build_text(text, tmp_path, "penguins.mlops")
    found = [d for d in diagnostics if "serving port 9000" in d.message]
    assert found and found[0].span.line == serving_line and not found[0].is_error
