"""Source stage: read CSV, Parquet, SQL or a served prediction log (served.py) into the step's
`data` Dataset.

Order: read -> filter (may use any column) -> column selection -> column types (column_types.py:
declared and coerced types, and a warning for a column that is mostly numbers).
A Parquet file is read with the filter pushed down when all of it translates to a pyarrow filter
(arrow_filter.py: the same rows as the evaluator keeps), and with `columns`, only those and the
filter's columns are read. The dataset's version is its content hash (artifacts.dataset_sha256). A
source always re-reads its input: the file or table may have changed since the last run.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts, tracking
from .column_types import read_types
from .core import RunContext, StepError, require_columns, step_error, step_result
from .params import resolve_ref

if TYPE_CHECKING:
    import pandas as pd


def resolve_path(step: ir.Source, ctx: RunContext) -> str:
    """A relative path is relative to the spec's folder; URLs (s3://...) and absolute paths are kept."""
    path = step.path or ""
    if "://" in path or os.path.isabs(path):
        return path
    spec_dir = os.path.dirname(os.path.abspath(ctx.spec_path)) if ctx.spec_path else os.getcwd()
    return os.path.normpath(os.path.join(spec_dir, path))


def _read_file(step: ir.Source, ctx: RunContext) -> tuple[pd.DataFrame, bool]:
    """The file's rows, and whether the filter was already applied while reading."""
    import pandas as pd

    path = resolve_path(step, ctx)
    if not artifacts.exists(path):
        raise step_error(step, f"{step.format} file not found: {path}", "path",
                         expected=f"an existing file (relative paths are read beside the spec: {step.path!r})",
                         found="no such file")
    try:
        if step.format == "csv":
            return pd.read_csv(path), False
        return _read_parquet(step, path, ctx)
    except StepError:
        raise
    except pd.errors.EmptyDataError:
        raise step_error(step, f"{path} is empty", "path", expected="a CSV file with a header and rows",
                         found="an empty file") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad input file
        raise step_error(step, f"could not read {path} as {step.format}", "path",
                         expected=f"a valid {step.format} file", found=f"{type(exc).__name__}: {exc}") from None


def _read_parquet(step: ir.Source, path: str, ctx: RunContext) -> tuple[pd.DataFrame, bool]:
    """A Parquet file, with the filter pushed down into the read when all of it translates to a
    pyarrow filter over the file's columns, and only the columns the step keeps when it says
    which. Anything Arrow refuses (a text column compared with a number) is read whole and left
    to the evaluator, whose errors name the step and the expression."""
    import pyarrow as pa

    from .arrow_filter import column_names, to_arrow_filter
    from .expressions import validate

    names = set(artifacts.parquet_schema(path).names)
    pushed, needed = None, set()
    if step.filter:
        tree = validate(step.filter, step, step.spans.get("filter")).tree
        needed = column_names(tree)
        pushed = to_arrow_filter(tree, ctx.params) if needed <= names else None
    columns = None
    if step.columns is not None and set(step.columns) <= names:
        kept = list(step.columns) if pushed is not None else [*step.columns, *sorted(needed - set(step.columns))]
        columns = [c for c in dict.fromkeys(kept) if c in names]
    if pushed is not None:
        try:
            df = artifacts.read_parquet(path, columns=columns, filters=pushed)
        except pa.ArrowException:
            df = None
        if df is not None and len(df):
            return df, True
        # No row kept, or a filter Arrow could not apply: the evaluator says why, as for any file.
    return artifacts.read_parquet(path, columns=columns if pushed is None else None), False


def _read_sql(step: ir.Source) -> pd.DataFrame:
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    if step.connection is None or not (step.query or step.table):
        raise step_error(step, "an sql source needs a connection and a query or a table",
                         expected='connection = env("DB_URL") and query = "select ..." or table = NAME',
                         found="connection " + ("set" if step.connection else "missing"))
    raw = resolve_ref(step.connection, step)
    try:
        url = sa.engine.make_url(raw)
    except SQLAlchemyError:
        # The value may be a password: say where it came from, never what it is.
        raise step_error(step, "the connection is not an SQLAlchemy URL", "connection",
                         expected="dialect+driver://user:password@host/database",
                         found="a value that does not parse") from None
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not os.path.exists(url.database):
        # SQLite would silently create an empty database file here.
        raise step_error(step, f"SQLite database not found: {url.database}", "connection",
                         expected="an existing database file", found="no such file")
    what = f"query {step.query!r}" if step.query else f"table {step.table!r}"
    try:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                if step.query:
                    return pd.read_sql_query(sa.text(step.query), conn)
                return pd.read_sql_table(step.table, conn)
        finally:
            engine.dispose()
    except ValueError as exc:   # pandas: table not found
        raise step_error(step, f"could not read {what} from {shown}", "table", expected="an existing table",
                         found=str(exc)) from None
    except (SQLAlchemyError, ImportError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise step_error(step, f"could not read {what} from {shown}", "query" if step.query else "table",
                         expected="a reachable database that answers the query", found=detail) from None


def _apply_filter(step: ir.Source, df: pd.DataFrame, ctx: RunContext) -> pd.DataFrame:
    from .expressions import rows_where

    mask = rows_where(step.filter, df, ctx.params, step, span=step.spans.get("filter"))
    return df[mask]


def load(step: ir.Source, ctx: RunContext) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The source's data after filter, column selection and types (nothing written), and what
    typing its columns found (column_types.read_types: notes, coerced counts, warnings)."""
    filtered = False     # True: the filter was applied while reading, and kept rows
    if step.format == "served":
        from .served import read_served

        df = read_served(step, ctx)     # never empty: it says why instead
    elif step.format == "sql":
        df = _read_sql(step)
    else:
        df, filtered = _read_file(step, ctx)
    origin = f"table {step.table}" if step.table else ("the query" if step.query else step.path)
    if df.empty:
        raise step_error(step, f"the source has no rows: {origin}", expected="at least one row", found="0 rows")
    if step.filter:
        df = df if filtered else _apply_filter(step, df, ctx)
        if df.empty:
            raise step_error(step, f"no row matches the filter: {step.filter}", "filter",
                             expected="at least one matching row", found="0 of the rows")
    if step.columns is not None:
        require_columns(step, list(df.columns), step.columns, span=step.spans.get("columns"))
        df = df[list(step.columns)]
    df, typing = read_types(step, df)
    return df.reset_index(drop=True), typing


def run(step: ir.Source, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    df, typing = load(step, ctx)
    uri = outputs["data"]
    # The file is written while the step's MLflow run is logged, and complete before it ends.
    with tracking.step_run(ctx, step) as mlrun, artifacts.parquet_written(df, uri) as digest:
        import mlflow

        # The file read is the dataset's source; an SQL result's (or a served log's) is the artifact.
        read_from = resolve_path(step, ctx) if step.format in ("csv", "parquet") else uri
        tracking.log_dataset(df, read_from, name=step.name, digest=digest, context="source")
        mlflow.log_params({"format": step.format, "rows": len(df), "columns": len(df.columns)})
        mlflow.set_tag("mlopsc.sha256", digest)
        if typing.get("warnings"):
            mlflow.set_tag("mlopsc.warnings", "\n".join(typing["warnings"])[:5000])
    return step_result(step, {"data": (uri, digest)}, rows=len(df), columns=[str(c) for c in df.columns],
                       mlflow_run_id=mlrun.info.run_id, **typing)
