"""Lineage: a pipeline run's record names the right hashes, in MLflow and on the model version."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression
from mlopsc.runtime import artifacts, execute, lineage, registry, tracking
from mlopsc.runtime.cli import lineage as lineage_command
from release_fixtures import FEATURES, fit_model, penguins, registry_name


def release_run(ctx, out, name: str) -> tuple[list[dict], dict]:
    """source -> split -> (model) -> metrics -> gate -> deploy, as a backend would run them."""
    source = ir.Source(name="penguins", format="csv", path="data/penguins.csv", filter=expression("year < 2009"))
    split = ir.Split(name="penguins_split", data=ir.Ref(step="penguins"), stratify="species", seed=7)
    results = [execute(source, {}, out(source), ctx)]
    results.append(execute(split, {"data": out(source)["data"]}, out(split), ctx))
    train = ir.Train(name="species_model", data=ir.Ref(step="penguins_split", port="train"), target="species",
                     features=tuple(FEATURES), estimator=ir.Estimator(name="sklearn.tree.DecisionTreeClassifier",
                                                                      params={"max_depth": 3}))
    results.append(execute(train, {"data": out(split)["train"]}, out(train), ctx))
    model, model_sha = out(train)["model"], results[-1]["outputs"]["model"]["sha256"]
    evaluate = ir.Evaluate(name="species_eval", model=ir.Ref(step="species_model"),
                           data=ir.Ref(step="penguins_split", port="test"), metrics=("accuracy", "f1_macro"))
    results.append(execute(evaluate, {"model": model, "data": out(split)["test"]}, out(evaluate), ctx))
    metrics = out(evaluate)["metrics"]
    gate = ir.Gate(name="release", metrics=ir.Ref(step="species_eval"), registry=name,
                   rules=(ir.ThresholdRule(metric="accuracy", op=">=", value=0.9),))
    results.append(execute(gate, {"metrics": metrics}, out(gate), ctx))
    deploy = ir.Deploy(name="species_service", model=ir.Ref(step="species_model"), registry=name)
    results.append(execute(deploy, {"model": model}, out(deploy), ctx))
    hashes = {"source": results[0]["outputs"]["data"]["sha256"],
              "train": results[1]["outputs"]["train"]["sha256"], "test": results[1]["outputs"]["test"]["sha256"],
              "model": model_sha}
    return results, hashes


def test_record_names_the_datasets_and_reaches_mlflow_and_the_version(ctx, out, tmp_path):
    name = registry_name()
    results, hashes = release_run(ctx, out, name)
    record = lineage.record_run(ctx, results, {"backend": "local"})
    assert record["datasets"] == {"penguins.data": hashes["source"], "penguins_split.train": hashes["train"],
                                  "penguins_split.test": hashes["test"],
                                  "species_eval.predictions": results[3]["outputs"]["predictions"]["sha256"]}
    assert hashes["source"] == artifacts.dataset_sha256(
        artifacts.read_parquet(out(ir.Source(name="penguins", format="csv"))["data"]))
    assert record["models"]["species_model.model"]["sha256"] == hashes["model"]
    assert record["deployments"][0] | {"metrics": None} == {
        "step": "species_service", "registry": name, "version": "1", "alias": "champion",
        "previous_version": None, "model_sha256": hashes["model"], "metrics": None}
    evaluated = results[3]["metrics"]
    assert record["deployments"][0]["metrics"] == evaluated and evaluated["accuracy"] > 0.9
    assert record["gates"]["release"]["verdict"] == "passed"
    assert record["git"]["commit"] and len(record["git"]["commit"]) == 40     # the spec is in this repo
    assert record["spec"]["sha256"] == "test" and record["program"] == {"backend": "local"}

    client = tracking.client(ctx)
    run = client.get_run(ctx.parent_run_id)
    assert run.data.tags["mlopsc.lineage.dataset.penguins_split.train"] == hashes["train"]
    assert run.data.tags["mlopsc.lineage.models"] == f"{name}/1"
    stored = json.loads(Path(client.download_artifacts(ctx.parent_run_id, "lineage.json", str(tmp_path))).read_text())
    assert stored["datasets"] == record["datasets"]
    version = client.get_model_version(name, "1")
    assert version.tags["mlopsc.dataset.penguins.data"] == hashes["source"]
    assert version.tags["mlopsc.lineage.run"] == ctx.parent_run_id
    # What a later gate compares with: the evaluate metrics recorded on the champion.
    assert registry.version_metrics(client, version)["f1_macro"] == evaluated["f1_macro"]
    assert version.run_id == results[2]["mlflow_run_id"]


def test_outside_git_the_commit_is_absent(tmp_path):
    spec = tmp_path / "alone" / "spec.mlops"
    spec.parent.mkdir()
    spec.write_text("pipeline p {}\n")
    assert lineage.git_info(str(spec)) is None


def test_lineage_command_prints_spec_and_data(ctx, out, tmp_path):
    name = registry_name()
    results, hashes = release_run(ctx, out, name)
    lineage.record_run(ctx, results)
    runner = CliRunner()
    shown = runner.invoke(lineage_command, [f"{name}@champion", "--tracking-uri", ctx.tracking_uri])
    assert shown.exit_code == 0, shown.output
    assert f"{name} version 1  (aliases: champion)" in shown.output
    assert re.search(rf"penguins_split\.train +sha256 {hashes['train']}", shown.output)
    accuracy = results[3]["metrics"]["accuracy"]
    assert "specs/penguins.mlops" in shown.output and f"accuracy {accuracy:.4f}" in shown.output
    as_json = runner.invoke(lineage_command, [f"{name}/1", "--json", "--tracking-uri", ctx.tracking_uri])
    document = json.loads(as_json.output)
    assert document["lineage"]["datasets"]["penguins.data"] == hashes["source"]
    assert document["tags"]["mlopsc.model_sha256"] == hashes["model"]


@pytest.mark.parametrize("reference, message", [
    ("{name}x", "no registered model named '{name}x'; did you mean '{name}'"),
    ("{name}@staging", "'{name}' has no alias 'staging'; aliases: champion"),
    ("{name}/9", "'{name}' has no version 9; versions: 1"),
])
def test_lineage_command_lookup_errors_exit_1(ctx, out, tmp_path, reference, message):
    name = registry_name()
    model = fit_model(ctx, penguins(), str(tmp_path / "m"), max_depth=1)["outputs"]["model"]["uri"]
    deploy = ir.Deploy(name="species_service", model=ir.Ref(step="species_model"), registry=name)
    execute(deploy, {"model": model}, out(deploy), ctx)
    shown = CliRunner().invoke(lineage_command, [reference.format(name=name), "--tracking-uri", ctx.tracking_uri])
    assert shown.exit_code == 1 and isinstance(shown.exception, SystemExit)    # not a crash
    assert message.format(name=name) in shown.output
    assert "Traceback" not in shown.output


def test_lineage_of_a_version_without_a_record_shows_its_tags(ctx, out, tmp_path):
    """A run that deployed but never reached record_run (killed): the version's tags still tell."""
    name = registry_name()
    trained = fit_model(ctx, penguins(), str(tmp_path / "m"), max_depth=1)
    deploy = ir.Deploy(name="species_service", model=ir.Ref(step="species_model"), registry=name)
    execute(deploy, {"model": trained["outputs"]["model"]["uri"]}, out(deploy), ctx)
    shown = CliRunner().invoke(lineage_command, [name, "--tracking-uri", ctx.tracking_uri])
    assert shown.exit_code == 0, shown.output
    assert "no lineage record" in shown.output
    assert f"mlopsc.model_sha256 = {trained['outputs']['model']['sha256']}" in shown.output
    assert f"mlopsc.train_run_id = {trained['mlflow_run_id']}" in shown.output
