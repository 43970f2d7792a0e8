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
def test_one_inference_service_per_deploy_running_mlopsc_serve_in_the_image(spec, built):
    from kubernetes.utils.quantity import parse_quantity
    from mlopsc.compiler import ir, load

    _, files, _ = built[spec.stem]
    deploys = [s for s in load(str(spec)).pipeline.steps if isinstance(s, ir.Deploy)]
    if not deploys:
        assert "kserve.yaml" not in files
        return
    services = load_all(files["kserve.yaml"])
    image = re.search(r"^# The image every component of pipeline .* runs in: (\S+)$", files["Dockerfile"], re.MULTILINE)[1]
    assert "[runtime,serve]" in files["Dockerfile"]       # the image can run the server
    assert len(services) == len(deploys)
    for deploy, service in zip(deploys, services):
        assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
        assert DNS_1123.match(service["metadata"]["name"]) and len(service["metadata"]["name"]) <= 63
        annotations = service["metadata"]["annotations"]
        assert annotations["mlopsc.io/registered-model"] == deploy.registry
        assert annotations["mlopsc.io/alias"] == deploy.alias and annotations["mlopsc.io/protocol"] == "v2"
        predictor = service["spec"]["predictor"]
        serving = deploy.serving or ir.Serving()
        assert predictor["minReplicas"] == predictor["maxReplicas"] == serving.replicas
        assert "model" not in predictor               # not KServe's MLflow runtime: our server
        (container,) = predictor["containers"]
        assert container["name"] == "kserve-container" and container["image"] == image
        command = container["command"]
        assert command[:2] == ["mlopsc", "serve"]
        options = dict(zip(command[2::2], command[3::2]))
        assert options["--model"] == f"{deploy.registry}@{deploy.alias}" and options["--host"] == "0.0.0.0"
        assert options["--port"] == str(serving.port) == str(container["ports"][0]["containerPort"])
        assert options["--max-batch-size"] == str(serving.max_batch_size)
        assert options["--max-batch-wait-ms"] == str(serving.max_batch_wait_ms)
        log = options["--log"]
        assert re.fullmatch(r"\$\{PREDICTION_LOG_[A-Z0-9_]+\}", log) or "://" in log    # an fsspec URI
        if log.startswith("${"):
            assert f"export {log[2:-1]}=" in files["kserve.yaml"]         # documented in the header
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert {"name": "MLFLOW_TRACKING_URI", "value": "${MLFLOW_TRACKING_URI}"} in container["env"]
        for section in container.get("resources", {}).values():
            for quantity in section.values():
                parse_quantity(quantity)          # a valid Kubernetes quantity
        if serving.cpu is not None:
            assert parse_quantity(container["resources"]["limits"]["cpu"]) == parse_quantity(str(serving.cpu))


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


def test_the_server_port_and_a_served_sources_log_reach_the_inference_service(tmp_path):
    from kfp_harness import REPO, build_text

    original = (REPO / "specs" / "penguins.mlops").read_text()
    anchor = 'registry = "penguins-species"'
    assert anchor in original
    text = original.replace(anchor, anchor + "\n    serving { port = 9000 }")
    text = text.replace("  monitor species_drift {", '  source live { served = species_service  log = "s3://b/log" }\n\n'
                        "  monitor live_drift { reference = penguins_split.train  current = live\n"
                        "    drift psi(bill_length_mm) > 0.2 -> retrain }\n\n  monitor species_drift {")
    (tmp_path / "data").symlink_to(REPO / "specs" / "data")
    files, diagnostics = build_text(text, tmp_path, "penguins.mlops")
    assert not [d for d in diagnostics if "serving port" in d.message or "served log" in d.message]
    (service,) = load_all(files["kserve.yaml"])
    (container,) = service["spec"]["predictor"]["containers"]
    options = dict(zip(container["command"][2::2], container["command"][3::2]))
    assert options["--port"] == "9000" and container["ports"] == [{"containerPort": 9000, "protocol": "TCP"}]
    assert options["--log"] == "s3://b/log" and "PREDICTION_LOG_" not in files["kserve.yaml"]


def test_a_served_source_without_a_log_uri_is_reported(tmp_path):
    from kfp_harness import REPO, build_text

    text = (REPO / "specs" / "penguins.mlops").read_text().replace(
        "  monitor species_drift {", "  source live { served = species_service }\n\n  monitor species_drift {")
    text = text.replace("current = penguins_2009", "current = live")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "served = species_service" in row)
    (tmp_path / "data").symlink_to(REPO / "specs" / "data")
    _, diagnostics = build_text(text, tmp_path, "penguins.mlops")
    found = [d for d in diagnostics if "served log in the state folder" in d.message]
    assert found and found[0].span.line == line and not found[0].is_error and found[0].code == "W900"
