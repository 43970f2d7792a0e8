"""Deploy (registry versions and aliases) and batch scoring, on a real MLflow SQLite registry."""
from __future__ import annotations

import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import artifacts, execute, tracking
from mlopsc.runtime.core import StepError
from release_fixtures import fit_model, penguins, registry_name


@pytest.fixture
def trained(ctx, tmp_path) -> tuple[dict, dict]:
    """Two train results (different trees, so different model hashes)."""
    data = penguins()
    return fit_model(ctx, data, str(tmp_path / "m1"), max_depth=1), fit_model(ctx, data, str(tmp_path / "m2"))


@pytest.fixture
def two_models(trained) -> tuple[str, str]:
    return trained[0]["outputs"]["model"]["uri"], trained[1]["outputs"]["model"]["uri"]


def deploy_step(name: str) -> ir.Deploy:
    return ir.Deploy(name="species_service", model=ir.Ref(step="species_model"), registry=name)


def test_deploy_twice_moves_champion_and_keeps_previous(ctx, out, trained, two_models):
    name = registry_name()
    step = deploy_step(name)
    first = execute(step, {"model": two_models[0]}, out(step), ctx)
    assert (first["version"], first["alias"], first["previous_version"]) == ("1", "champion", None)
    second = execute(step, {"model": two_models[1]}, out(step), ctx)
    assert (second["version"], second["previous_version"]) == ("2", "1")
    client = tracking.client(ctx)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(name, "previous").version) == "1"
    v2 = client.get_model_version(name, "2")
    assert v2.tags["mlopsc.model_sha256"] == artifacts.sha256_of(two_models[1])
    assert v2.tags["mlopsc.run_id"] == ctx.run_id
    assert v2.run_id == trained[1]["mlflow_run_id"]        # the version's source run is the train run
    release = artifacts.read_json(out(step)["release"])
    assert release["model_uri"] == f"models:/{name}@champion" and release["previous_version"] == "1"
    # The registered copy lives in MLflow's artifact store and loads by alias.
    model = artifacts.load_model(f"models:/{name}@champion")
    assert model.get_params()["estimator__max_depth"] == 3


def test_redeploying_the_same_model_reuses_its_version(ctx, out, two_models):
    name = registry_name()
    step = deploy_step(name)
    first = execute(step, {"model": two_models[0]}, out(step), ctx)
    again = execute(step, {"model": two_models[0]}, out(step), ctx)
    assert (again["version"], again["previous_version"]) == ("1", None)
    assert len(tracking.client(ctx).search_model_versions(f"name = '{name}'")) == 1
    # What a retrain with unchanged data deploys where no cache spared the run (Prefect): nothing, said so.
    assert first["unchanged"] is False and "notes" not in first
    assert again["unchanged"] is True
    assert again["notes"] == ["nothing new to deploy: this model is version 1, which already holds 'champion'"]


def test_deploy_of_a_missing_model_is_a_step_error(ctx, out, tmp_path):
    step = deploy_step(registry_name())
    with pytest.raises(StepError, match="the model to deploy does not exist"):
        execute(step, {"model": str(tmp_path / "nothing")}, out(step), ctx)


def test_score_with_a_model_folder_and_with_the_registry(ctx, out, two_models, tmp_path):
    data_uri = str(tmp_path / "batch.parquet")
    batch = penguins().query("year == 2009").reset_index(drop=True)
    artifacts.write_parquet(batch, data_uri)
    step = ir.Score(name="batch", data=ir.Ref(step="penguins_2009"), model=ir.Ref(step="species_model"),
                    output="out/batch_predictions.csv")
    ctx.spec_path = str(tmp_path / "spec.mlops")
    result = execute(step, {"data": data_uri, "model": two_models[1]}, out(step), ctx)
    scored = artifacts.read_parquet(out(step)["predictions"])
    assert result["rows"] == len(batch) == len(scored)
    assert list(scored.columns[: len(batch.columns)]) == list(batch.columns)
    assert {"y_pred", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"} <= set(scored.columns)
    assert (scored["y_pred"] == scored["species"]).mean() > 0.8      # a depth-3 tree knows penguins
    csv = pd.read_csv(tmp_path / "out" / "batch_predictions.csv")
    assert list(csv["y_pred"]) == list(scored["y_pred"])

    name = registry_name()
    execute(deploy_step(name), {"model": two_models[1]}, out(deploy_step(name)), ctx)
    by_alias = ir.Score(name="batch", data=ir.Ref(step="penguins_2009"), registry=name)
    execute(by_alias, {"data": data_uri}, out(by_alias), ctx)
    assert list(artifacts.read_parquet(out(by_alias)["predictions"])["y_pred"]) == list(scored["y_pred"])


def test_score_errors_name_what_is_missing(ctx, out, tmp_path):
    data_uri = str(tmp_path / "batch.parquet")
    artifacts.write_parquet(penguins().head(5), data_uri)
    name = registry_name()
    model = fit_model(ctx, penguins(), str(tmp_path / "m"), max_depth=1)["outputs"]["model"]["uri"]
    execute(deploy_step(name), {"model": model}, out(deploy_step(name)), ctx)
    typo = ir.Score(name="batch", data=ir.Ref(step="d"), registry=name[:-1])
    with pytest.raises(StepError, match=f"did you mean '{name}'"):
        execute(typo, {"data": data_uri}, out(typo), ctx)
    no_alias = ir.Score(name="batch", data=ir.Ref(step="d"), registry=name, alias="staging")
    with pytest.raises(StepError, match="holds alias 'staging'"):
        execute(no_alias, {"data": data_uri}, out(no_alias), ctx)
    artifacts.write_parquet(penguins().drop(columns=["island"]).head(5), data_uri)
    by_alias = ir.Score(name="batch", data=ir.Ref(step="d"), registry=name)
    with pytest.raises(StepError, match="model feature 'island' is not in the data"):
        execute(by_alias, {"data": data_uri}, out(by_alias), ctx)


def test_deploy_from_an_object_store_registers_a_loadable_copy(ctx, out, two_models):
    """Artifacts on memory:// (as on s3://): MLflow cannot read them, so the deploy copies them in."""
    import uuid

    import fsspec

    remote = f"memory://mlopsc-deploy-{uuid.uuid4().hex}/species_model/model"
    fsspec.filesystem("memory").put(two_models[1], remote, recursive=True)
    assert artifacts.sha256_of(remote) == artifacts.sha256_of(two_models[1])   # same files, same hash
    name = registry_name()
    released = execute(deploy_step(name), {"model": remote}, out(deploy_step(name)), ctx)
    assert released["model_sha256"] == artifacts.sha256_of(two_models[1])
    model = artifacts.load_model(f"models:/{name}@champion")
    assert model.get_params()["estimator__max_depth"] == 3
