"""Artifact I/O: atomic writes, content hashes in sidecars, local and memory:// alike."""
from __future__ import annotations

import uuid

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames
from mlopsc.compiler import ir
from mlopsc.runtime import artifacts


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path) -> str:
    return str(tmp_path / "art") if request.param == "local" else f"memory://mlopsc-test-{uuid.uuid4().hex}"


def test_output_uris_follow_port_suffixes():
    split = ir.Split(name="s", data=ir.Ref(step="p"))
    expected = {"train": "/a/s/train.parquet", "test": "/a/s/test.parquet"}
    assert artifacts.output_uris("/a/s/", split) == expected
    assert artifacts.output_uris("/a/m", ir.Train) == {"model": "/a/m/model"}


def test_parquet_round_trip_and_deterministic_hash(root, penguins):
    df = penguins
    h1 = artifacts.write_parquet(df, f"{root}/one.parquet")
    h2 = artifacts.write_parquet(df.copy(), f"{root}/two.parquet")
    assert h1 == h2 == artifacts.sha256_of(f"{root}/one.parquet")
    back = artifacts.read_parquet(f"{root}/one.parquet")
    assert back.shape == df.shape and list(back.columns) == list(df.columns)
    # Recomputing from the content (no sidecar) gives the recorded hash.
    assert artifacts.dataset_sha256(back) == h1
    # The index is not data; values and row order are.
    assert artifacts.dataset_sha256(df.set_axis(range(100, 100 + len(df)))) == artifacts.dataset_sha256(df)
    assert artifacts.dataset_sha256(df.iloc[::-1]) != h1
    changed = df.copy()
    changed.loc[0, "bill_length_mm"] += 0.1
    assert artifacts.dataset_sha256(changed) != h1


def test_writes_leave_no_temporary_files(root):
    artifacts.write_parquet(pd.DataFrame({"a": [1, 2]}), f"{root}/d/x.parquet")
    artifacts.write_json({"b": 1}, f"{root}/d/x.json")
    fs, path = artifacts._fs(f"{root}/d")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    assert names == ["x.json", "x.json.sha256", "x.parquet", "x.parquet.sha256"]


def test_json_hash_is_of_the_bytes_and_key_order_free(root):
    h1 = artifacts.write_json({"b": 1, "a": [1.5, None]}, f"{root}/m.json")
    h2 = artifacts.write_json({"a": [1.5, None], "b": 1}, f"{root}/n.json")
    assert h1 == h2
    assert artifacts.read_json(f"{root}/m.json") == {"a": [1.5, None], "b": 1}
    artifacts.remove(f"{root}/m.json")
    assert not artifacts.exists(f"{root}/m.json") and not artifacts.exists(f"{root}/m.json.sha256")


def test_model_folder_save_load_and_hash(root):
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    uri = f"{root}/train/model"
    digest = artifacts.save_model(model, uri, input_example=X.head(2))
    assert artifacts.exists(f"{uri}/MLmodel")
    assert artifacts.sha256_of(uri) == digest
    fs, path = artifacts._fs(uri)
    assert artifacts._folder_sha256(fs, path) == digest
    assert list(artifacts.load_model(uri).predict(X)) == [0, 0, 1, 1]
    # Saving again replaces the folder instead of nesting into it.
    artifacts.save_model(model, uri)
    assert not fs.exists(f"{path}/model")


def test_model_loading_permission_is_scoped(monkeypatch):
    import os

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    with artifacts.trusted_model_loading():
        with artifacts.trusted_model_loading():
            pass
        assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "true"   # the outer load still runs
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" not in os.environ


@settings(max_examples=20, deadline=None)
@given(data_frames([column("a", dtype=float), column("b", dtype=int),
                    column("c", elements=st.text(st.characters(exclude_categories=("Cs",)), max_size=5))]))
def test_any_frame_hashes_the_same_after_a_round_trip(df):
    uri = f"memory://hash-prop/{uuid.uuid4().hex}.parquet"
    digest = artifacts.write_parquet(df, uri)
    assert artifacts.dataset_sha256(artifacts.read_parquet(uri)) == digest
    assert artifacts.write_parquet(df.copy(), uri) == digest
    artifacts.remove(uri)


def test_dataset_hash_is_the_same_in_another_process(tmp_path, penguins):
    import subprocess
    import sys

    uri = str(tmp_path / "p.parquet")
    digest = artifacts.write_parquet(penguins, uri)
    code = ("from mlopsc.runtime import artifacts; import sys; "
            "print(artifacts.dataset_sha256(artifacts.read_parquet(sys.argv[1])))")
    other = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == digest


def test_the_recorded_hash_is_the_read_back_frames_for_every_kind_of_column(tmp_path):
    """write_parquet hashes the frame it was given when Parquet gives the same dtypes back, and
    the read-back frame otherwise: either way the sidecar is what a reader recomputes."""
    import decimal

    import numpy as np

    negative_nan = -np.float64("nan")            # NaN with its sign bit set, as `-x` makes one
    df = pd.DataFrame({
        "f": [1.5, negative_nan, -0.0, np.nan], "i": pd.array([1, None, 3, 4], dtype="Int64"),
        "c": pd.Categorical(["b", "a", None, "b"], categories=["b", "a"]),
        "s": pd.Series(["x", None, "z", "x"], dtype="str"), "b": [True, False, True, True],
        "t": pd.to_datetime(["2024-01-01 00:00", None, "2024-03-01 12:00", "2024-04-01 00:00"]),
        "tz": pd.to_datetime(["2024-01-01"] * 4).tz_localize("Europe/Paris"),
        "o": [decimal.Decimal("1.1"), decimal.Decimal("2.25"), None, decimal.Decimal(3)]})
    for columns in (["f", "i", "c", "s", "b", "t", "tz"], list(df.columns)):   # without, with an object column
        uri = str(tmp_path / f"{len(columns)}.parquet")
        digest = artifacts.write_parquet(df[columns], uri)
        assert artifacts.dataset_sha256(artifacts.read_parquet(uri)) == digest


def test_a_write_that_fails_in_its_thread_fails_the_caller_and_leaves_no_sidecar(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    uri = str(tmp_path / "file" / "x.parquet")
    with pytest.raises(OSError):
        artifacts.write_parquet(pd.DataFrame({"a": [1, 2]}), uri)
    assert not artifacts.exists(f"{uri}.sha256")
