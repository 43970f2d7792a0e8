"""Gate: threshold, champion and fairness rules against a real MLflow registry (SQLite)."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import artifacts, execute, registry, tracking
from mlopsc.runtime.core import StepFailed
from mlopsc.runtime.gate import demographic_parity, equal_opportunity
from release_fixtures import metrics_doc, registry_name


def gate(*rules, registry_name=None, no_champion="pass", **kw) -> ir.Gate:
    return ir.Gate(name="release", metrics=ir.Ref(step="species_eval", port="metrics"), rules=rules,
                   registry=registry_name, no_champion=no_champion, **kw)


def champion_version(ctx, name: str, tmp_path, metrics: dict[str, float], *, as_tags: bool = True) -> str:
    """Register a version holding `champion` whose metrics are version tags (as lineage records
    them) or only metrics of its source run."""
    import mlflow

    client = tracking.client(ctx)
    with tracking.step_run(ctx, ir.Train(name="old_train", data=ir.Ref(step="d"), target="species",
                                         estimator=ir.Estimator(name="x"))) as run:
        if not as_tags:
            mlflow.log_metrics(metrics)
    tags = {f"mlopsc.metric.{k}": str(v) for k, v in metrics.items()} if as_tags else {}
    (tmp_path / "old_model").mkdir(exist_ok=True)
    version = registry.register(client, name, str(tmp_path / "old_model"), run.info.run_id, tags)
    registry.promote(client, name, version.version, "champion")
    return str(version.version)


def test_threshold_rules_pass_and_report_every_rule(ctx, out, tmp_path):
    step = gate(ir.ThresholdRule(metric="accuracy", op=">=", value=0.9),
                ir.ThresholdRule(metric="f1_macro", op=">", value=0.5))
    metrics = metrics_doc(str(tmp_path / "m.json"), {"accuracy": 0.95, "f1_macro": 0.93})
    result = execute(step, {"metrics": metrics}, out(step), ctx)
    assert result["decision"]["passed"] is True and result["decision"]["verdict"] == "passed"
    decision = artifacts.read_json(out(step)["decision"])
    assert [(r["observed"], r["threshold"], r["passed"]) for r in decision["rules"]] == [
        (0.95, 0.9, True), (0.93, 0.5, True)]
    assert "accuracy is 0.9500" in decision["rules"][0]["reason"]


def test_failing_gate_writes_decision_and_leaves_the_alias_where_it_was(ctx, out, tmp_path):
    name = registry_name()
    v1 = champion_version(ctx, name, tmp_path, {"accuracy": 0.97})
    span = ir.Span(file="penguins.mlops", line=31, col=5, end_line=31, end_col=30)
    step = gate(ir.ThresholdRule(metric="accuracy", op=">=", value=0.9, span=span), registry_name=name)
    metrics = metrics_doc(str(tmp_path / "m.json"), {"accuracy": 0.81})
    with pytest.raises(StepFailed) as failed:
        execute(step, {"metrics": metrics}, out(step), ctx)
    assert failed.value.reason == "gate"
    assert "accuracy is 0.8100, does not meet >= 0.9" in str(failed.value)
    assert "penguins.mlops:31:5" in str(failed.value)
    decision = artifacts.read_json(out(step)["decision"])      # written before the gate stops the run
    assert decision["passed"] is False and decision["rules"][0]["observed"] == 0.81
    client = tracking.client(ctx)
    assert str(client.get_model_version_by_alias(name, "champion").version) == v1
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    gate_runs = client.search_runs([client.get_experiment_by_name("penguins").experiment_id],
                                   f"tags.mlopsc.run_id = '{ctx.run_id}' and tags.mlopsc.step = 'release'")
    assert gate_runs[0].data.tags["mlopsc.gate.decision"] == "failed"
    assert client.get_run(ctx.parent_run_id).data.tags["mlopsc.gate.release"] == "failed"


def test_force_gate_passes_and_records_who_and_when(ctx, out, tmp_path):
    ctx.force_gate, ctx.forced_by = True, "alice"
    step = gate(ir.ThresholdRule(metric="accuracy", op=">=", value=0.99))
    metrics = metrics_doc(str(tmp_path / "m.json"), {"accuracy": 0.9})
    result = execute(step, {"metrics": metrics}, out(step), ctx)
    assert result["decision"]["passed"] is True and result["decision"]["forced"] is True
    assert result["status"] == "warn"
    decision = artifacts.read_json(out(step)["decision"])
    assert decision["forced_by"] == "alice" and decision["forced_at"].startswith("20")
    assert decision["rules"][0]["passed"] is False          # the rule's own verdict is kept
    assert tracking.client(ctx).get_run(ctx.parent_run_id).data.tags["mlopsc.gate.release"] == "forced"


@pytest.mark.parametrize("no_champion, passes", [("pass", True), ("fail", False)])
def test_champion_rule_without_champion_follows_no_champion(ctx, out, tmp_path, no_champion, passes):
    step = gate(ir.ChampionRule(metric="f1_macro", op=">=", delta=-0.01), registry_name=registry_name(),
                no_champion=no_champion)
    metrics = metrics_doc(str(tmp_path / "m.json"), {"f1_macro": 0.9})
    if passes:
        result = execute(step, {"metrics": metrics}, out(step), ctx)
        assert result["decision"]["passed"] is True
    else:
        with pytest.raises(StepFailed):
            execute(step, {"metrics": metrics}, out(step), ctx)
    rule = artifacts.read_json(out(step)["decision"])["rules"][0]
    assert rule["threshold"] is None and f"no_champion = {no_champion}" in rule["reason"]


@pytest.mark.parametrize("as_tags", [True, False], ids=["version-tags", "run-metrics"])
def test_champion_rule_compares_with_the_alias_holder(ctx, out, tmp_path, as_tags):
    name = registry_name()
    version = champion_version(ctx, name, tmp_path, {"f1_macro": 0.92}, as_tags=as_tags)
    step = gate(ir.ChampionRule(metric="f1_macro", op=">=", delta=-0.01), registry_name=name)
    better = metrics_doc(str(tmp_path / "better.json"), {"f1_macro": 0.915})
    result = execute(step, {"metrics": better}, out(step), ctx)
    rule = artifacts.read_json(out(step)["decision"])["rules"][0]
    assert result["decision"]["passed"] and math.isclose(rule["threshold"], 0.91)
    assert rule["champion"] == {"version": version, "value": 0.92}
    worse = metrics_doc(str(tmp_path / "worse.json"), {"f1_macro": 0.90})
    with pytest.raises(StepFailed, match="champion version"):
        execute(step, {"metrics": worse}, out(step), ctx)


def test_fairness_measures_on_a_hand_made_binary_frame():
    frame = pd.DataFrame({
        "sex": ["f", "f", "f", "f", "m", "m", "m", "m", "m", None],
        "y_true": [1, 1, 1, 0, 1, 1, 0, 0, 0, 1],
        "y_pred": [1, 1, 0, 0, 1, 0, 1, 1, 0, 0]})
    # selection rates (share predicted 1): f 2/4, m 3/5; the row without sex is left out.
    dp, groups = demographic_parity(frame, "sex")
    assert math.isclose(dp, 0.6 - 0.5) and groups["f"]["1"] == 0.5
    # true-positive rates for the positive label 1: f 2/3, m 1/2.
    eo, rates = equal_opportunity(frame, "sex")
    assert math.isclose(eo, 2 / 3 - 1 / 2) and set(rates) == {"f", "m"}


def test_fairness_measures_on_a_hand_made_multiclass_frame():
    frame = pd.DataFrame({
        "island": ["x"] * 4 + ["y"] * 4,
        "y_true": ["a", "a", "b", "c", "a", "b", "b", "c"],
        "y_pred": ["a", "b", "b", "c", "a", "a", "b", "a"]})
    # shares predicted a: x 1/4, y 3/4 (gap 1/2); b: 2/4 vs 1/4; c: 1/4 vs 0.
    assert math.isclose(demographic_parity(frame, "island")[0], 0.5)
    # TPR of c: x 1/1, y 0/1 -> gap 1 (a and b have gaps of 1/2).
    assert math.isclose(equal_opportunity(frame, "island")[0], 1.0)


def test_fairness_rule_in_a_gate_reads_the_predictions(ctx, out, tmp_path):
    predictions = str(tmp_path / "predictions.parquet")
    artifacts.write_parquet(pd.DataFrame({"island": ["x", "x", "y", "y"], "y_true": ["a", "b", "a", "b"],
                                          "y_pred": ["a", "b", "a", "a"]}), predictions)
    step = gate(ir.FairnessRule(measure="demographic_parity", column="island", op="<=", value=0.1),
                predictions=ir.Ref(step="species_eval", port="predictions"))
    metrics = metrics_doc(str(tmp_path / "m.json"), {"accuracy": 0.75})
    with pytest.raises(StepFailed, match="demographic_parity difference across island is 0.5000"):
        execute(step, {"metrics": metrics, "predictions": predictions}, out(step), ctx)
    bad = gate(ir.FairnessRule(measure="equal_opportunity", column="islnd", op="<", value=0.1),
               predictions=ir.Ref(step="species_eval", port="predictions"))
    with pytest.raises(Exception, match="fairness column 'islnd' is not in the predictions") as error:
        execute(bad, {"metrics": metrics, "predictions": predictions}, out(bad), ctx)
    assert not isinstance(error.value, StepFailed)


def test_unknown_metric_is_a_step_error_naming_what_exists(ctx, out, tmp_path):
    step = gate(ir.ThresholdRule(metric="recall", op=">=", value=0.9))
    metrics = metrics_doc(str(tmp_path / "m.json"), {"accuracy": 0.95})
    with pytest.raises(Exception) as error:
        execute(step, {"metrics": metrics}, out(step), ctx)
    assert "step release" in str(error.value) and "one of: accuracy" in str(error.value)
