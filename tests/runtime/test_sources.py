"""Source stage on the penguins example: CSV, Parquet and a real SQLite database."""
from __future__ import annotations

import os

import pandas as pd
import pytest
from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression
from mlopsc.runtime import StepError, artifacts, execute


def csv_source(**kw) -> ir.Source:
    return ir.Source(**{"name": "penguins", "format": "csv", "path": "data/penguins.csv", **kw})


def test_csv_relative_to_spec_with_filter_and_stable_hash(ctx, out):
    step = csv_source(filter=expression("year < 2009"))
    first = execute(step, {}, out(step), ctx)
    df = artifacts.read_parquet(first["outputs"]["data"]["uri"])
    assert first["status"] == "ok" and first["rows"] == len(df) == 110 + 114
    assert set(df["year"]) == {2007, 2008}
    again = execute(step, {}, {"data": f"{ctx.artifact_root}/again/data.parquet"}, ctx)
    assert again["outputs"]["data"]["sha256"] == first["outputs"]["data"]["sha256"]
    assert artifacts.sha256_of(first["outputs"]["data"]["uri"]) == first["outputs"]["data"]["sha256"]


def test_filter_changes_the_version(ctx, out):
    a = execute(csv_source(filter=expression("year < 2009")), {}, out(csv_source()), ctx)
    b = execute(csv_source(name="p2009", filter=expression("year == 2009")), {}, out(csv_source(name="p2009")), ctx)
    assert a["outputs"]["data"]["sha256"] != b["outputs"]["data"]["sha256"]
    assert b["rows"] == 120


def test_columns_and_types(ctx, out):
    step = csv_source(columns=("species", "year", "sex"), types={"year": "str", "species": "category"})
    df = artifacts.read_parquet(execute(step, {}, out(step), ctx)["outputs"]["data"]["uri"])
    assert list(df.columns) == ["species", "year", "sex"]
    assert isinstance(df["species"].dtype, pd.CategoricalDtype)
    assert df["year"].iloc[0] == "2007"


def test_parquet_source_with_absolute_path_on_memory_outputs(ctx, tmp_path, penguins):
    penguins.to_parquet(tmp_path / "p.parquet")
    step = ir.Source(name="pq", format="parquet", path=str(tmp_path / "p.parquet"), types={"year": "int"})
    uri = f"memory://sources-test/{ctx.run_id}/data.parquet"
    result = execute(step, {}, {"data": uri}, ctx)
    assert result["rows"] == 344 and artifacts.read_parquet(uri)["year"].dtype == "Int64"


@pytest.fixture
def sqlite_db(tmp_path, penguins, monkeypatch) -> str:
    import sqlalchemy as sa

    path = tmp_path / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    penguins.to_sql("penguins", engine, index=False)
    pd.DataFrame({"x": pd.Series([], dtype="int64")}).to_sql("empty", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{path}")
    return str(path)


def test_sql_query_and_table(ctx, out, sqlite_db):
    q = ir.Source(name="q", format="sql", connection=ir.SecretRef(name="warehouse-url"),
                  query="select * from penguins where species = 'Gentoo'")
    assert execute(q, {}, out(q), ctx)["rows"] == 124
    t = ir.Source(name="t", format="sql", connection=ir.EnvRef(name="WAREHOUSE_URL"), table="penguins",
                  filter=expression("island == 'Dream'"))
    assert execute(t, {}, out(t), ctx)["rows"] == 124


def assert_fails(step, ctx, outputs, *words):
    with pytest.raises(StepError) as info:
        execute(step, {}, outputs, ctx)
    text = str(info.value)
    assert text.startswith(f"step {step.name}")
    for word in words:
        assert word in text, text
    for uri in outputs.values():
        assert not artifacts.exists(uri)
    return text


def test_missing_file(ctx, out):
    step = csv_source(path="data/nope.csv")
    assert_fails(step, ctx, out(step), "not found", "nope.csv")


def test_bad_filter_shows_the_expression(ctx, out):
    step = csv_source(filter=expression("yeer < 2009"))
    assert_fails(step, ctx, out(step), "yeer < 2009", "bill_length_mm")


def test_unknown_column_suggests(ctx, out):
    step = csv_source(columns=("species", "bill_lenght_mm"))
    assert_fails(step, ctx, out(step), "'bill_lenght_mm'", "did you mean bill_length_mm")


def test_type_coercion_failure_shows_values(ctx, out):
    step = csv_source(types={"species": "float"})
    assert_fails(step, ctx, out(step), "'species'", "'Adelie'")


def test_filter_matching_nothing(ctx, out):
    step = csv_source(filter=expression("year > 3000"))
    assert_fails(step, ctx, out(step), "no row matches")


def test_empty_table(ctx, out, sqlite_db):
    step = ir.Source(name="e", format="sql", connection=ir.EnvRef(name="WAREHOUSE_URL"), table="empty")
    assert_fails(step, ctx, out(step), "no rows")


def test_missing_table(ctx, out, sqlite_db):
    step = ir.Source(name="m", format="sql", connection=ir.EnvRef(name="WAREHOUSE_URL"), table="pengwins")
    assert_fails(step, ctx, out(step), "pengwins")


def test_unreachable_database(ctx, out, tmp_path, monkeypatch):
    monkeypatch.setenv("GONE_URL", f"sqlite:///{tmp_path}/gone/db.sqlite")
    step = ir.Source(name="u", format="sql", connection=ir.EnvRef(name="GONE_URL"), query="select 1")
    assert_fails(step, ctx, out(step), "not found")
    assert not (tmp_path / "gone").exists()
    # A path that exists but is no database SQLite can open: the connection itself fails.
    monkeypatch.setenv("GONE_URL", f"sqlite:///{tmp_path}")
    assert_fails(step, ctx, out(step), "could not read", "unable to open database")


def test_connection_errors_never_show_the_password(ctx, out, monkeypatch):
    monkeypatch.setenv("PG_URL", "postgresql+nodriver://u:hunter2@127.0.0.1:1/db")
    step = ir.Source(name="u", format="sql", connection=ir.EnvRef(name="PG_URL"), query="select 1")
    text = assert_fails(step, ctx, out(step), "could not read", "127.0.0.1")
    assert "hunter2" not in text


def test_unset_secret_names_the_variable_only(ctx, out, monkeypatch):
    monkeypatch.delenv("DB_CREDS_URL", raising=False)
    step = ir.Source(name="s", format="sql", connection=ir.SecretRef(name="db.creds", key="url"), table="t")
    assert_fails(step, ctx, out(step), "DB_CREDS_URL", 'secret("db.creds", "url")')


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server in a temp dir (trust auth, localhost only), if this machine has
    the server binaries, a `postgres` user to run them and the psycopg2 driver; else skipped."""
    import importlib.util
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    if not (shutil.which("initdb") and shutil.which("pg_ctl") and importlib.util.find_spec("psycopg2")):
        pytest.skip("PostgreSQL server binaries or the psycopg2 driver are not installed")
    as_postgres: list[str] = []
    if os.geteuid() == 0:   # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to start the server")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="mlopsc-pg-"))
    if as_postgres:
        os.chown(root, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run([*as_postgres, "initdb", "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run([*as_postgres, "pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "start",
                    "-o", options], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_query_and_unreachable_server(ctx, out, penguins, postgres_url, monkeypatch):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    penguins.to_sql("penguins", engine, index=False, if_exists="replace")
    engine.dispose()
    monkeypatch.setenv("PG_URL", postgres_url)
    step = ir.Source(name="pg", format="sql", connection=ir.EnvRef(name="PG_URL"),
                     query="select species, island, year from penguins where year = 2009")
    result = execute(step, {}, out(step), ctx)
    assert result["rows"] == 120 and result["columns"] == ["species", "island", "year"]
    # The same server's port with nothing listening any more: a refused connection, one message.
    closed = postgres_url.rsplit(":", 1)[0] + ":1/postgres"
    monkeypatch.setenv("PG_URL", closed)
    assert_fails(step, ctx, out(step), "could not read", "127.0.0.1:1", "Connection refused")
