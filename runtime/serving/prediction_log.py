"""The prediction log: every answered row, append-only Parquet, written off the request path.

Layout under the log URI (a folder; any fsspec URI):

    predictions/part-<UTC start>-<pid>-<seq>.parquet    one row per answered row
    feedback/part-<UTC start>-<pid>-<seq>.parquet       request_id, label, timestamp

Prediction columns, in this order (part 2 of issue 10, `source ... { served = ... }`, relies on it):
`request_id` (string), `timestamp` (timestamp[us, tz=UTC]: when the request arrived),
`model_name`, `model_version` (string), one column per model feature (float64 for numbers, string
for text, bool for booleans), `prediction`, `proba_<class>` (float64, classifiers with
predict_proba), `latency_ms` (float64: arrival to answer, the same for every row of a request).

Writing. Request handlers call `add_predictions` / `add_feedback`, which only append to a bounded
in-memory queue (`max_pending_rows`). One writer thread wakes every `flush_interval` seconds, turns
what is queued into Arrow tables and rewrites the current part of each stream with everything it
holds: to a hidden temporary name, then renamed over the part, so a reader sees a whole file or
the previous one, never half of one. A part is closed and a new one started after `roll_rows`
rows or `roll_bytes` bytes (in memory), `roll_seconds` seconds, or when the served model's columns
change. Each write rewrites the whole current part, so these bounds also bound a write's cost:
at 1,000 rows/s a 10,000-row part fills in 20 flushes and each row is written about 10 times,
which is what the log costs beside the server's own work (docs/benchmarks.md, "Serving"); a
larger part costs more per row, a smaller one makes more files. `close()` (the server's graceful
shutdown) writes everything queued. A `kill -9` loses what was queued since the start of
the last completed write: at most one flush interval plus the duration of one write.

Rows are never dropped silently: a full queue or a failed write counts the rows in `on_failed`
(the server's /metrics) and logs a warning.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .model import LoadedModel

log = logging.getLogger("mlopsc.serving.log")

PREDICTIONS, FEEDBACK = "predictions", "feedback"
BASE_COLUMNS = ["request_id", "timestamp", "model_name", "model_version"]


@dataclass
class PredictionRows:
    """The rows of one answered request (or part of a batch), as the writer thread will need them."""
    request_ids: list[str]
    timestamp: datetime
    model: LoadedModel
    frame: Any                     # the checked feature values the model saw, by name (inputs.Checked)
    predictions: Any               # array-like, one per row
    probabilities: Any             # (rows, classes) array, or None
    latency_ms: float

    @property
    def rows(self) -> int:
        return len(self.request_ids)


@dataclass
class FeedbackRows:
    request_ids: list[str]
    labels: list[Any]
    timestamp: datetime

    @property
    def rows(self) -> int:
        return len(self.request_ids)


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {"number": pa.float64(), "boolean": pa.bool_()}.get(kind, pa.string())


def _label_type(values: Any) -> pa.DataType:
    import pyarrow as pa

    values = list(values)
    if values and all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def _plain_list(values: Any) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in (values.tolist() if hasattr(values, "tolist")
                                                              else values)]


def prediction_table(batches: list[PredictionRows]) -> pa.Table:
    """One table of the rows of `batches`, all answered by one model. The writer builds one table per
    flush rather than one per request: Arrow's fixed cost per array, times 15 columns, times every
    single-row request, would cost the writer thread more than the server spends answering them."""
    import numpy as np
    import pyarrow as pa

    model = batches[0].model
    counts = [b.rows for b in batches]
    n = sum(counts)
    each = pa.array(np.repeat(np.arange(len(batches)), counts))      # the batch of each row
    stamps = pa.array([b.timestamp for b in batches], type=pa.timestamp("us", tz="UTC")).take(each)
    columns: dict[str, pa.Array] = {
        "request_id": pa.array([i for b in batches for i in b.request_ids], type=pa.string()), "timestamp": stamps,
        "model_name": pa.array([model.name] * n, type=pa.string()),
        "model_version": pa.array([model.version] * n, type=pa.string()),
    }
    for feature in model.features:
        values = np.concatenate([np.asarray(b.frame[feature.name]) for b in batches])
        if feature.kind == "any":
            values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]
        columns[feature.name] = pa.array(values, type=_arrow_type(feature.kind), from_pandas=True)
    predictions = _plain_list(np.concatenate([np.asarray(b.predictions) for b in batches]))
    kind = pa.float64() if model.task == "regression" else _label_type(model.classes or predictions)
    if kind == pa.string():
        predictions = [None if p is None else str(p) for p in predictions]
    columns["prediction"] = pa.array(predictions, type=kind)
    if batches[0].probabilities is not None:
        probabilities = np.concatenate([b.probabilities for b in batches])
        for i, cls in enumerate(model.classes):
            columns[f"proba_{cls}"] = pa.array(probabilities[:, i], type=pa.float64())
    columns["latency_ms"] = pa.array(np.repeat(np.array([b.latency_ms for b in batches], dtype="float64"), counts))
    return pa.table(columns)


def feedback_table(batch: FeedbackRows) -> pa.Table:
    import pyarrow as pa

    labels = [None if v is None else str(v) for v in batch.labels]
    return pa.table({"request_id": pa.array(batch.request_ids, type=pa.string()),
                     "label": pa.array(labels, type=pa.string()),
                     "timestamp": pa.array([batch.timestamp] * batch.rows, type=pa.timestamp("us", tz="UTC"))})


class _Part:
    """The part file a stream is appending to: what is on disk (`durable`) and what is not yet."""

    def __init__(self, name: str, schema: pa.Schema) -> None:
        self.name, self.schema = name, schema
        self.durable: pa.Table | None = None
        self.fresh: list[pa.Table] = []
        self.rows = 0
        self.nbytes = 0
        self.started = time.monotonic()


class _Stream:
    def __init__(self, log_: PredictionLog, folder: str) -> None:
        self.log, self.folder = log_, folder
        self.part: _Part | None = None
        self.seq = 0

    def append(self, table: pa.Table) -> None:
        part = self.part
        if part is not None and (not part.schema.equals(table.schema) or part.rows >= self.log.roll_rows
                                 or part.nbytes >= self.log.roll_bytes
                                 or time.monotonic() - part.started >= self.log.roll_seconds):
            self.write()
            self.part = part = None
        if part is None:
            self.seq += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            self.part = part = _Part(f"part-{stamp}-{os.getpid()}-{self.seq:06d}.parquet", table.schema)
        part.fresh.append(table)
        part.rows += table.num_rows
        part.nbytes += table.nbytes

    def write(self) -> None:
        part = self.part
        if part is None or not part.fresh:
            return
        import pyarrow as pa

        fresh_rows = sum(t.num_rows for t in part.fresh)
        table = pa.concat_tables(([part.durable] if part.durable is not None else []) + part.fresh)
        try:
            self.log.write_atomically(f"{self.folder}/{part.name}", table)
        except Exception as exc:  # noqa: BLE001 - any storage failure: count, tell, carry on
            self.log.failed(self.folder.rsplit("/", 1)[-1], fresh_rows, "write_error", exc)
            self.part = None   # the part's file keeps what it held; later rows go to a new part
            return
        part.durable, part.fresh = table, []
        self.log.written(self.folder.rsplit("/", 1)[-1], fresh_rows)


class PredictionLog:
    def __init__(self, uri: str, *, flush_interval: float = 0.5, max_pending_rows: int = 200_000,
                 roll_rows: int = 10_000, roll_bytes: int = 32 * 1024 * 1024, roll_seconds: float = 600.0,
                 on_written: Callable[[str, int], None] | None = None,
                 on_failed: Callable[[str, int, str], None] | None = None) -> None:
        from fsspec.core import url_to_fs

        self.uri = uri.rstrip("/")
        self.fs, self.root = url_to_fs(self.uri)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.flush_interval, self.max_pending_rows = flush_interval, max_pending_rows
        self.roll_rows, self.roll_bytes, self.roll_seconds = roll_rows, roll_bytes, roll_seconds
        self.on_written, self.on_failed = on_written, on_failed
        self._queue: deque[PredictionRows | FeedbackRows] = deque()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams = {PREDICTIONS: _Stream(self, f"{self.root}/{PREDICTIONS}"),
                         FEEDBACK: _Stream(self, f"{self.root}/{FEEDBACK}")}
        self._last_warning = 0.0

    # ------------------------------------------------------------ request side (event loop)
    def start(self) -> None:
        for stream in self._streams.values():
            self.fs.makedirs(stream.folder, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="mlopsc-prediction-log", daemon=True)
        self._thread.start()

    def add(self, batch: PredictionRows | FeedbackRows) -> bool:
        """Queue rows for the writer; False (and counted as failed) when the queue is full."""
        with self._lock:
            if self._pending_rows + batch.rows <= self.max_pending_rows and not self._stop.is_set():
                self._queue.append(batch)
                self._pending_rows += batch.rows
                return True
        stream = FEEDBACK if isinstance(batch, FeedbackRows) else PREDICTIONS
        self.failed(stream, batch.rows, "queue_full", None)
        return False

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------ writer thread
    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        while True:
            stopping = self._stop.wait(max(0.0, next_flush - time.monotonic()))
            next_flush = time.monotonic() + self.flush_interval   # from the start of this write
            self.flush()
            if stopping:
                self.flush()   # whatever came in while the last flush ran
                return

    def flush(self) -> None:
        with self._lock:
            batches, self._queue = list(self._queue), deque()
            self._pending_rows = 0
        for group in _runs(batches):
            if isinstance(group[0], FeedbackRows):
                for batch in group:
                    self._convert(FEEDBACK, feedback_table, batch)
            elif not self._convert(PREDICTIONS, prediction_table, group, quiet=True):
                for batch in group:      # find the request Arrow cannot hold; log the others
                    self._convert(PREDICTIONS, prediction_table, [batch])
        for stream in self._streams.values():
            stream.write()

    def _convert(self, stream: str, to_table: Callable[[Any], pa.Table], rows: Any, quiet: bool = False) -> bool:
        try:
            table = to_table(rows)
        except Exception as exc:  # noqa: BLE001 - a value Arrow cannot hold: count it
            if not quiet:
                self.failed(stream, sum(b.rows for b in rows) if isinstance(rows, list) else rows.rows,
                            "conversion_error", exc)
            return False
        self._streams[stream].append(table)
        return True

    def write_atomically(self, path: str, table: pa.Table) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder, name = path.rsplit("/", 1)
        tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex}"
        # Every flush rewrites the whole part, so its cost counts: no dictionary for the unique request
        # ids and the numbers, and column statistics for the timestamp only (what a reader of a time
        # window can use) halve the cost of a write.
        options = {"use_dictionary": [f.name for f in table.schema if pa.types.is_string(f.type)
                                      and f.name != "request_id"],
                   "write_statistics": ["timestamp"]}
        try:
            if self.local:
                pq.write_table(table, tmp, **options)
                os.replace(tmp, path)
            else:
                with self.fs.open(tmp, "wb") as handle:
                    pq.write_table(table, handle, **options)
                self.fs.mv(tmp, path)
        finally:
            try:
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            except OSError:
                pass

    def written(self, stream: str, rows: int) -> None:
        if self.on_written is not None:
            self.on_written(stream, rows)

    def failed(self, stream: str, rows: int, reason: str, exc: Exception | None) -> None:
        if self.on_failed is not None:
            self.on_failed(stream, rows, reason)
        now = time.monotonic()
        if exc is not None or now - self._last_warning > 10:   # a full queue warns at most every 10 s
            self._last_warning = now
            detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
            log.warning("prediction log: %d %s row(s) not logged (%s)%s", rows, stream, reason, detail)


def _runs(batches: list[PredictionRows | FeedbackRows]) -> list[list[Any]]:
    """Consecutive batches of one kind (and, for predictions, of one model), in order."""
    runs: list[list[Any]] = []
    for batch in batches:
        last = runs[-1][-1] if runs else None
        if last is not None and type(last) is type(batch) and getattr(last, "model", None) is getattr(
                batch, "model", None):
            runs[-1].append(batch)
        else:
            runs.append([batch])
    return runs


# ---------------------------------------------------------------- reading


def _since(since: datetime | timedelta | str | None) -> pd.Timestamp | None:
    import pandas as pd

    if since is None:
        return None
    if isinstance(since, timedelta):
        return pd.Timestamp.now(tz="UTC") - since
    stamp = pd.Timestamp(since)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _read_stream(uri: str, stream: str, since: Any) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(uri.rstrip("/"))
    files = sorted(fs.glob(f"{root}/{stream}/part-*.parquet"))
    if not files:
        return None
    tables = []
    for path in files:
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle))
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    start = _since(since)
    if start is not None:
        frame = frame[frame["timestamp"] >= start]
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def read_prediction_log(uri: str, since: datetime | timedelta | str | None = None) -> pd.DataFrame:
    """Every logged prediction row under the log URI (the folder holding `predictions/`), oldest
    first; with `since` (a UTC time, naive meaning UTC, or a timedelta back from now) only the rows
    that arrived then or later. Parts written by different model versions may have different
    feature columns; a column a part lacks is null there."""
    import pandas as pd

    frame = _read_stream(uri, PREDICTIONS, since)
    if frame is None:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[us, UTC]" if c == "timestamp" else "str")
                             for c in [*BASE_COLUMNS, "prediction"]} | {"latency_ms": pd.Series(dtype="float64")})
    return frame


def read_feedback_log(uri: str, since: datetime | timedelta | str | None = None) -> pd.DataFrame:
    """Every feedback row (`request_id`, `label`, `timestamp`) under the log URI, oldest first."""
    import pandas as pd

    frame = _read_stream(uri, FEEDBACK, since)
    if frame is None:
        return pd.DataFrame({"request_id": pd.Series(dtype="str"), "label": pd.Series(dtype="str"),
                             "timestamp": pd.Series(dtype="datetime64[us, UTC]")})
    return frame
