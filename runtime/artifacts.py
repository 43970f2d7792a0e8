"""Artifact I/O over fsspec: local paths, `memory://`, `s3://`, `gs://` behave alike.

Every write is atomic and leaves `{uri}.sha256` beside the artifact:
- files (Parquet, JSON) are written to `{path}.tmp-<uuid>` and moved onto `{path}`. On a local
  disk the move is a rename (atomic). Object stores (s3, gs) have no rename: fsspec's move is a
  server-side copy then delete, and an object only becomes visible once its upload completed, so
  readers still never see half an artifact; the sidecar is written last either way.
- a model is an MLflow model folder (sklearn flavour). It is saved into a temporary sibling folder
  (local) or a local temp dir that is uploaded to a temporary prefix (remote), then moved.

Content hashes:
- Dataset: sha256 over the column names and dtypes plus pandas' row hashes of the frame as it reads
  back from Parquet. It identifies the data, not its encoding: the same rows in the same order give
  the same hash whatever the pyarrow version or compression.
- JSON: sha256 of the bytes (written with sorted keys, so the same document gives the same bytes).
- Model folder: sha256 over (relative path, file sha256) of its files in sorted order.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

if TYPE_CHECKING:
    import pandas as pd


def output_uris(base: str, step: ir.Step | type[ir.Step]) -> dict[str, str]:
    """The artifact URI of each output port of `step` under the step's folder `base`."""
    base = base.rstrip("/")
    return {port: f"{base}/{port}{ir.PORT_SUFFIX[ptype]}" for port, ptype in step.OUTPUTS.items()}


def _fs(uri: str):
    from fsspec.core import url_to_fs

    return url_to_fs(uri)


def _is_local(fs) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def exists(uri: str) -> bool:
    fs, path = _fs(uri)
    return fs.exists(path)


def remove(uri: str) -> None:
    """Delete an artifact and its sidecar, if present (a failed step leaves nothing behind)."""
    fs, path = _fs(uri)
    for p in (path, f"{path}.sha256"):
        if fs.exists(p):
            fs.rm(p, recursive=True)


def _atomic(uri: str, write: Callable[[Any, str], None]) -> None:
    """Call `write(fs, tmp)` to write the artifact to a temporary name, then move it onto `uri`."""
    fs, path = _fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        write(fs, tmp)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def _atomic_write(uri: str, data: bytes) -> None:
    _atomic(uri, lambda fs, tmp: fs.pipe_file(tmp, data))


def _write_sidecar(uri: str, digest: str) -> None:
    _atomic_write(f"{uri}.sha256", f"{digest}\n".encode())


def sha256_of(uri: str) -> str:
    """The content hash of an artifact: its sidecar if present, else computed from the content."""
    fs, path = _fs(uri)
    sidecar = f"{path}.sha256"
    if fs.exists(sidecar):
        return fs.cat_file(sidecar).decode().strip()
    if fs.isdir(path):
        return _folder_sha256(fs, path)
    if path.endswith(".parquet"):
        return dataset_sha256(read_parquet(uri))
    return hashlib.sha256(fs.cat_file(path)).hexdigest()


# ---------------------------------------------------------------- datasets


def dataset_sha256(df: pd.DataFrame) -> str:
    """Hash of a frame's content (names, dtypes, values, row order), independent of its index."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    if len(df.columns):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy(dtype="uint64").tobytes())
    return h.hexdigest()


def _to_table(df: pd.DataFrame):
    import pyarrow as pa

    # Column names must be strings in Parquet; the index is never data here.
    return pa.Table.from_pandas(df.rename(columns=str), preserve_index=False)


def _reads_back_alike(df: pd.DataFrame, table: Any) -> bool:
    """Whether `df` is, dtype for dtype, the frame that reading `table` back gives: then its hash
    is that frame's hash. Values of such dtypes come back exactly (NaN and -0.0, the values with
    several bit patterns, are made canonical by the hash itself); a Python object column may not
    (a Decimal gains the column's scale), so one of those means no."""
    back = table.slice(0, 0).to_pandas().dtypes
    return len(back) == len(df.columns) and all(
        a == b and a != object for a, b in zip(df.dtypes, back))


# Dataset artifacts are written for speed: they are read back by the next steps of the same run
# and hashed by content, not by bytes. Text and category columns are dictionary-encoded (a few
# distinct values take a few bytes); numbers are stored plainly, uncompressed and without
# statistics (random floats do not compress, and encoding, compressing and summarising them cost
# more than writing them).


def _write_table(table: Any, fs: Any, tmp: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]
    options = {"compression": "none", "use_dictionary": text, "write_statistics": False}
    if _is_local(fs):
        pq.write_table(table, tmp, **options)
    else:
        with fs.open(tmp, "wb") as out:
            pq.write_table(table, out, **options)


def write_parquet(df: pd.DataFrame, uri: str) -> str:
    """Write a frame (without its index) atomically; returns its content hash."""
    with parquet_written(df, uri) as digest:
        return digest


@contextlib.contextmanager
def parquet_written(df: pd.DataFrame, uri: str) -> Iterator[str]:
    """Write a frame (without its index) atomically, from a thread: yields its content hash as
    soon as it is computed, and the file is complete, with its sidecar, when the block ends.
    Work in the block (a step's MLflow logging) overlaps the write; pyarrow writes without
    holding the GIL. The frame must not change until then.

    The hash is of the frame as readers will see it, so that a recomputed hash equals the
    sidecar: `df`'s own hash, unless Parquet changes a dtype (`_reads_back_alike`)."""
    table = _to_table(df)
    failed: list[BaseException] = []

    def write() -> None:
        try:
            _atomic(uri, lambda fs, tmp: _write_table(table, fs, tmp))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failed.append(exc)

    writer = threading.Thread(target=write, name="mlopsc-parquet-write")
    writer.start()
    try:
        digest = dataset_sha256(df if _reads_back_alike(df, table) else table.to_pandas())
        yield digest
    finally:
        writer.join()
    if failed:
        raise failed[0]
    _write_sidecar(uri, digest)


def read_parquet(uri: str, columns: list[str] | None = None, filters: Any = None) -> pd.DataFrame:
    """A Dataset artifact (or any Parquet file) as a frame; `columns`: only these; `filters`: a
    pyarrow filter expression, applied while reading."""
    import pyarrow.parquet as pq

    fs, path = _fs(uri)
    if _is_local(fs):
        # Decoded page by page: pre-buffering (for object stores' latency) would first hold
        # whole column chunks in memory.
        table = pq.read_table(path, columns=columns, filters=filters, pre_buffer=False)
    else:
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=columns, filters=filters)
    return to_pandas(table)


def parquet_schema(uri: str) -> Any:
    """The pyarrow schema of a Parquet file, from its footer alone."""
    import pyarrow.parquet as pq

    fs, path = _fs(uri)
    with fs.open(path, "rb") as f:
        return pq.read_schema(f)


def to_pandas(table: Any) -> pd.DataFrame:
    """A pyarrow Table (not used afterwards) as a frame, holding about one copy of the data: each
    column becomes its own block and its Arrow memory is freed once converted, rather than all
    columns being copied into 2-D blocks while the table lives; then Arrow's allocator gives the
    freed memory back to the system (it keeps it for reuse otherwise)."""
    import pyarrow as pa

    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    pa.default_memory_pool().release_unused()
    return frame


# ---------------------------------------------------------------- JSON documents


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays come out of pandas / sklearn everywhere; keep them exact.
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def to_json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode()


def write_json(obj: Any, uri: str) -> str:
    data = to_json_bytes(obj)
    digest = hashlib.sha256(data).hexdigest()
    _atomic_write(uri, data)
    _write_sidecar(uri, digest)
    return digest


def read_json(uri: str) -> Any:
    fs, path = _fs(uri)
    return json.loads(fs.cat_file(path))


# ---------------------------------------------------------------- models


def _folder_sha256(fs, path: str) -> str:
    h = hashlib.sha256()
    root = path.rstrip("/")
    for f in sorted(fs.find(root)):
        rel = f[len(root):].lstrip("/")
        h.update(rel.encode() + b"\0" + hashlib.sha256(fs.cat_file(f)).digest())
    return h.hexdigest()


def skops_trusted_types(model: Any) -> list[str]:
    """The types skops does not trust by default that this fitted model holds (e.g.
    `sklearn.tree._tree.Tree`). Derived from the model itself, so any estimator works: we trust
    them because this process just fitted the model."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def fill_caches() -> None:
    """Fill a per-process cache that the first model save in a process would fill on its own:
    MLflow's map of installed packages (~0.5 s; it checks a model's pip requirements with it).
    The local runner's zygote calls this once, so the workers it forks inherit the map."""
    from mlflow.utils import requirements_utils

    fill = getattr(requirements_utils, "_init_packages_to_modules_map", None)   # private; may go
    if fill is not None:
        fill()


def pip_requirements() -> list[str]:
    """Pinned requirements of a served model. Given explicitly because MLflow's inference of them
    re-imports the model in a subprocess, which costs seconds per save."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "skops", "pandas", "numpy", "mlflow")]


def save_model(model: Any, uri: str, *, signature: Any = None, input_example: Any = None,
               trusted_types: list[str] | None = None, metadata: dict[str, Any] | None = None) -> str:
    """Save a fitted sklearn model as an MLflow model folder at `uri`; returns its hash.

    Serialization: skops (MLflow's default, which refuses to load types outside an allow-list),
    with the allow-list derived from the model (or `trusted_types` when the caller has it),
    rather than pickle, which runs any code on load. `metadata` lands in the MLmodel file
    (read it back with `model_metadata`)."""
    import warnings

    import mlflow.sklearn

    fs, path = _fs(uri)
    local = _is_local(fs)
    workdir = os.path.dirname(path) if local else tempfile.mkdtemp(prefix="mlopsc-model-")
    os.makedirs(workdir, exist_ok=True)
    tmp = os.path.join(workdir, f"{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # MLflow's integer-column schema hint, on every save
            mlflow.sklearn.save_model(
                model, tmp, serialization_format="skops",
                skops_trusted_types=trusted_types or skops_trusted_types(model), signature=signature,
                input_example=input_example, pip_requirements=pip_requirements(), metadata=metadata,
            )
        if fs.exists(path):
            fs.rm(path, recursive=True)
        if local:
            os.rename(tmp, path)
        else:
            remote_tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            fs.put(tmp, remote_tmp, recursive=True)
            fs.mv(remote_tmp, path, recursive=True)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        if not local:
            shutil.rmtree(workdir, ignore_errors=True)
    digest = _folder_sha256(fs, path)
    _write_sidecar(uri, digest)
    return digest


def model_metadata(uri: str) -> dict[str, Any]:
    """The `metadata` of a model folder's MLmodel file ({} if none). Train steps store there what
    consumers of the model need: {"mlopsc": {"target", "task", "features", "classes", ...}}."""
    import yaml

    fs, path = _fs(uri)
    mlmodel = f"{path.rstrip('/')}/MLmodel"
    if not fs.exists(mlmodel):
        raise FileNotFoundError(f"{uri} is not an MLflow model folder (no MLmodel file)")
    return yaml.safe_load(fs.cat_file(mlmodel)).get("metadata") or {}


_trust_lock = threading.Lock()
_trust_depth = 0
_trust_before: str | None = None


@contextlib.contextmanager
def trusted_model_loading() -> Iterator[None]:
    """MLflow 3.17 refuses to deserialize any sklearn model (skops included) unless
    MLFLOW_ALLOW_PICKLE_DESERIALIZATION is true. Models loaded here were written by this
    pipeline's own train steps, so allow it for the duration of the load only. Counted under a
    lock: steps may load models in parallel threads (Prefect), and the first to finish must not
    withdraw the permission from the others."""
    global _trust_depth, _trust_before
    name = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    with _trust_lock:
        if _trust_depth == 0:
            _trust_before = os.environ.get(name)
            os.environ[name] = "true"
        _trust_depth += 1
    try:
        yield
    finally:
        with _trust_lock:
            _trust_depth -= 1
            if _trust_depth == 0:
                if _trust_before is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = _trust_before


def load_model(uri: str) -> Any:
    """Load the sklearn model of an MLflow model folder (any fsspec URI) or of an MLflow URI
    (`runs:/ID/model`, `models:/NAME@ALIAS`, resolved against the current tracking URI)."""
    import mlflow.sklearn

    with trusted_model_loading():
        if uri.startswith(("runs:/", "models:/")):
            return mlflow.sklearn.load_model(uri)
        fs, path = _fs(uri)
        if _is_local(fs):
            return mlflow.sklearn.load_model(path)
        with tempfile.TemporaryDirectory(prefix="mlopsc-model-") as tmp:
            local = os.path.join(tmp, "model")
            fs.get(path.rstrip("/") + "/", local, recursive=True)
            return mlflow.sklearn.load_model(local)
