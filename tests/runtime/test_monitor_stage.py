"""Monitor: drift statistics from scipy on the penguins data, rule actions, the alert webhook."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import artifacts, execute, tracking
from mlopsc.runtime.core import StepError
from release_fixtures import fit_model, penguins, registry_name

SPEC_RULES = (  # the rules of specs/penguins.mlops
    ir.DriftRule(statistic="psi", column="bill_length_mm", op=">", threshold=0.2, action="retrain"),
    ir.DriftRule(statistic="ks", column="flipper_length_mm", measure="pvalue", op="<", threshold=0.01,
                 action="alert"),
)


def monitor(*rules: ir.DriftRule, model: bool = False, **kw) -> ir.Monitor:
    return ir.Monitor(name="species_drift", reference=ir.Ref(step="penguins_split", port="train"),
                      current=ir.Ref(step="penguins_2009"), drift=rules,
                      model=ir.Ref(step="species_model") if model else None, **kw)


@pytest.fixture
def frames(tmp_path):
    """(uri of a frame) factory under tmp_path."""
    def write(name: str, frame: pd.DataFrame) -> str:
        uri = str(tmp_path / f"{name}.parquet")
        artifacts.write_parquet(frame.reset_index(drop=True), uri)
        return uri
    return write


def test_a_one_std_shift_is_flagged_and_a_resample_is_not(ctx, out, frames):
    data = penguins()
    shifted = data.copy()
    shifted["bill_length_mm"] += data["bill_length_mm"].std()
    resample = data.sample(n=len(data), replace=True, random_state=1)
    step = monitor(*SPEC_RULES)
    reference = frames("reference", data)

    flagged = execute(step, {"reference": reference, "current": frames("shifted", shifted)}, out(step), ctx)
    report = artifacts.read_json(out(step)["report"])
    assert flagged["retrain"] is True and flagged["reasons"][0].startswith("psi(bill_length_mm) is")
    assert report["features"]["bill_length_mm"]["psi"] > 0.2
    assert report["features"]["bill_length_mm"]["ks"]["pvalue"] < 1e-6
    assert report["features"]["flipper_length_mm"]["psi"] < 1e-9     # untouched column: identical
    assert [r["rule"] for r in report["fired"]] == ["psi(bill_length_mm) > 0.2"]

    calm = execute(step, {"reference": reference, "current": frames("resample", resample)}, out(step), ctx)
    report = artifacts.read_json(out(step)["report"])
    assert calm["retrain"] is False and calm["alerts"] == [] and report["fired"] == []
    assert report["features"]["bill_length_mm"]["psi"] < 0.1
    assert set(report["features"]["island"]) >= {"psi", "chi2", "shares"}     # a categorical feature


def test_statistics_are_logged_to_mlflow(ctx, out, frames):
    data = penguins()
    step = monitor(*SPEC_RULES)
    execute(step, {"reference": frames("r", data), "current": frames("c", data.iloc[::-1])}, out(step), ctx)
    client = tracking.client(ctx)
    runs = client.search_runs([client.get_experiment_by_name("penguins").experiment_id],
                              f"tags.mlopsc.run_id = '{ctx.run_id}' and tags.mlopsc.step = 'species_drift'")
    metrics = runs[0].data.metrics
    assert metrics["drift.rules_fired"] == 0 and metrics["drift.bill_length_mm.ks_pvalue"] == 1.0
    assert "drift.island.chi2_statistic" in metrics


def test_prediction_drift_uses_the_model(ctx, out, frames, tmp_path):
    data = penguins()
    model = fit_model(ctx, data, str(tmp_path / "m"))["outputs"]["model"]["uri"]
    only_gentoo_like = data.copy()
    only_gentoo_like["flipper_length_mm"] = 230.0        # every penguin now has a Gentoo's flippers
    step = monitor(ir.DriftRule(statistic="chi2", column="prediction", measure="pvalue", op="<",
                                threshold=0.01, action="alert"), model=True)
    result = execute(step, {"reference": frames("r", data), "current": frames("c", only_gentoo_like),
                            "model": model}, out(step), ctx)
    report = artifacts.read_json(out(step)["report"])
    assert report["features"]["prediction"]["type"] == "categorical"
    assert result["alerts"] and result["webhook"] == {"posted": False}
    # Model features only (plus rule columns): not the target, not the year.
    assert "species" not in report["features"] and "year" not in report["features"]


def test_a_deployed_monitor_watches_the_model_in_service(ctx, out, frames, tmp_path):
    data = penguins()
    model = fit_model(ctx, data, str(tmp_path / "m"))["outputs"]["model"]["uri"]
    # No backend gives a monitor of a deployed model its `model` input: it scores the deployed one.
    inputs = {"reference": frames("r", data), "current": frames("c", data)}
    name = registry_name()
    span = ir.Span(file="penguins.mlops", line=63, col=3, end_line=70, end_col=4)
    step = monitor(model=True, registry=name, span=span)
    with pytest.raises(StepError) as error:         # nothing deployed yet: one line, what to run first
        execute(step, inputs, out(step), ctx)
    assert str(error.value).splitlines()[0] == (
        f"step species_drift (penguins.mlops:63:3): monitor species_drift scores the model deployed as {name}@champion, "
        "and nothing is deployed there yet: run the pipeline that deploys it first (`mlopsc run penguins.mlops`, or "
        "`mlopsc submit` of its Prefect or Kubeflow build)")
    deploy = ir.Deploy(name="species_service", model=ir.Ref(step="species_model"), registry=name)
    execute(deploy, {"model": model}, out(deploy), ctx)
    execute(step, inputs, out(step), ctx)
    report = artifacts.read_json(out(step)["report"])
    assert report["model"] == f"models:/{name}@champion" and report["features"]["prediction"]["psi"] < 1e-9


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):   # keep pytest output clean
        pass


def test_alert_posts_the_summary_to_the_webhook(ctx, out, frames, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DRIFT_HOOK", f"http://127.0.0.1:{server.server_port}/hooks/drift")
        data = penguins()
        shifted = data.assign(flipper_length_mm=data["flipper_length_mm"] + 20)
        step = monitor(*SPEC_RULES, webhook=ir.EnvRef(name="DRIFT_HOOK"))
        result = execute(step, {"reference": frames("r", data), "current": frames("c", shifted)}, out(step), ctx)
    finally:
        server.shutdown()
        server.server_close()
    assert result["status"] == "ok" and result["webhook"] == {"posted": True, "status": 204}
    content_type, body = _Collector.received[-1]
    assert content_type == "application/json"
    assert body["monitor"] == "species_drift" and body["fired"] == ["ks(flipper_length_mm) pvalue < 0.01"]
    assert body["alerts"][0].startswith("ks(flipper_length_mm) pvalue is")


def test_an_unreachable_webhook_warns_and_keeps_the_report(ctx, out, frames, monkeypatch):
    import socket

    with socket.socket() as probe:          # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DRIFT_HOOK", f"http://127.0.0.1:{port}/")
    data = penguins()
    step = monitor(*SPEC_RULES, webhook=ir.EnvRef(name="DRIFT_HOOK"))
    current = frames("c", data.assign(flipper_length_mm=data["flipper_length_mm"] + 20))
    result = execute(step, {"reference": frames("r", data), "current": current}, out(step), ctx)
    assert result["status"] == "warn" and "could not be reached" in result["webhook"]["error"]
    assert artifacts.read_json(out(step)["report"])["webhook"]["posted"] is False


def test_rule_errors_name_the_rule(ctx, out, frames):
    data = penguins()
    inputs = {"reference": frames("r", data), "current": frames("c", data)}
    span = ir.Span(file="penguins.mlops", line=44, col=5, end_line=44, end_col=40)
    wrong_test = monitor(ir.DriftRule(statistic="ks", column="island", op=">", threshold=0.1, action="alert",
                                      span=span))
    with pytest.raises(StepError, match="ks needs a numeric column and 'island' is categorical") as error:
        execute(wrong_test, inputs, out(wrong_test), ctx)
    assert "penguins.mlops:44:5" in str(error.value)
    typo = monitor(ir.DriftRule(statistic="psi", column="bill_lenght_mm", op=">", threshold=0.1,
                                action="alert"))
    with pytest.raises(StepError, match="did you mean bill_length_mm"):
        execute(typo, inputs, out(typo), ctx)


def test_report_the_2009_batch_against_2007_2008(ctx, out, frames, tmp_path):
    """No expectation is asserted about the 2009 penguins: this prints what the monitor finds."""
    data = penguins()
    before, batch = data[data["year"] < 2009], data[data["year"] == 2009]
    model = fit_model(ctx, before, str(tmp_path / "m"))["outputs"]["model"]["uri"]
    step = monitor(*SPEC_RULES, ir.DriftRule(statistic="psi", column="prediction", op=">", threshold=0.2,
                                             action="alert"), model=True)
    result = execute(step, {"reference": frames("r", before), "current": frames("c", batch), "model": model},
                     out(step), ctx)
    report = artifacts.read_json(out(step)["report"])
    print("\n2009 penguins vs 2007-2008:")
    for name, entry in report["features"].items():
        test = entry.get("ks") or entry.get("chi2") or {}
        print(f"  {name:18} {entry['type']:11} psi={entry['psi']:.4f}  "
              f"{'ks' if 'ks' in entry else 'chi2'} p={test.get('pvalue', float('nan')):.4g}")
    for rule in report["rules"]:
        print(f"  rule {rule['rule']:40} -> {rule['reason']}{'  FIRED: ' + rule['action'] if rule['fired'] else ''}")
    print(f"  retrain={result['retrain']} alerts={len(result['alerts'])}")
    assert set(report["features"]) >= {"bill_length_mm", "flipper_length_mm", "prediction"}
