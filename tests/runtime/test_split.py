"""Split stage: random, stratified and by time; reproducible; clear errors."""
from __future__ import annotations

import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import StepError, artifacts, execute


@pytest.fixture
def data_uri(ctx, penguins) -> str:
    uri = f"{ctx.artifact_root}/penguins/data.parquet"
    artifacts.write_parquet(penguins, uri)
    return uri


PORTS = ("train", "test")


def split(**kw) -> ir.Split:
    return ir.Split(**{"name": "penguins_split", "data": ir.Ref(step="penguins"), **kw})


def hashes(result) -> tuple[str, str]:
    return result["outputs"]["train"]["sha256"], result["outputs"]["test"]["sha256"]


def test_stratified_split_is_reproducible_and_keeps_shares(ctx, data_uri, penguins, tmp_path):
    step = split(test_size=ir.ParamRef(name="test_size"), stratify="species", seed=7)
    ctx.params = {"test_size": 0.25}
    first = execute(step, {"data": data_uri}, {p: f"{tmp_path}/a/{p}.parquet" for p in PORTS}, ctx)
    again = execute(step, {"data": data_uri}, {p: f"{tmp_path}/b/{p}.parquet" for p in PORTS}, ctx)
    assert hashes(first) == hashes(again)
    assert first["rows"] == {"train": 258, "test": 86} and first["method"] == "stratified"
    train = artifacts.read_parquet(first["outputs"]["train"]["uri"])
    test = artifacts.read_parquet(first["outputs"]["test"]["uri"])
    assert len(train) + len(test) == len(penguins)
    share = penguins.species.value_counts(normalize=True)
    for part in (train, test):
        assert (part.species.value_counts(normalize=True) - share).abs().max() < 0.02
    other = execute(split(stratify="species", seed=8), {"data": data_uri},
                    {p: f"{tmp_path}/c/{p}.parquet" for p in ("train", "test")}, ctx)
    assert hashes(other) != hashes(first)


def test_random_split_on_memory(ctx, data_uri):
    outputs = {p: f"memory://split-test/{ctx.run_id}/{p}.parquet" for p in ("train", "test")}
    result = execute(split(test_size=0.2, seed=1), {"data": data_uri}, outputs, ctx)
    assert result["rows"] == {"train": 275, "test": 69} and result["method"] == "random"
    assert len(artifacts.read_parquet(outputs["test"])) == 69


def test_time_split_puts_the_latest_rows_in_test(ctx, out, data_uri):
    step = split(time_column="year", test_size=0.3)
    result = execute(step, {"data": data_uri}, out(step), ctx)
    train = artifacts.read_parquet(result["outputs"]["train"]["uri"])
    test = artifacts.read_parquet(result["outputs"]["test"]["uri"])
    assert len(test) == 104 and train.year.max() <= test.year.min() == 2009
    assert result["method"] == "time"


def assert_fails(step, ctx, out, data_uri, *words):
    outputs = out(step)
    with pytest.raises(StepError) as info:
        execute(step, {"data": data_uri}, outputs, ctx)
    for word in ("step penguins_split", *words):
        assert word in str(info.value), str(info.value)
    assert not any(artifacts.exists(u) for u in outputs.values())


def test_missing_stratify_column(ctx, out, data_uri):
    assert_fails(split(stratify="specie"), ctx, out, data_uri, "'specie'", "did you mean species")


def test_class_with_a_single_member(ctx, out, tmp_path, penguins):
    data = penguins.copy()
    data.loc[0, "species"] = "Emperor"
    uri = str(tmp_path / "one.parquet")
    artifacts.write_parquet(data, uri)
    assert_fails(split(stratify="species"), ctx, out, uri, "Emperor", "single row",
                 "at least 2 rows per class")


def test_stratify_column_with_missing_values(ctx, out, data_uri):
    assert_fails(split(stratify="sex"), ctx, out, data_uri, "'sex' has 11 missing")


def test_bad_test_size(ctx, out, data_uri):
    assert_fails(split(test_size=1.5), ctx, out, data_uri, "strictly between 0 and 1", "1.5")
