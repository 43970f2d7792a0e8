"""The load test of `mlopsc serve`: valid and malformed requests while the registry alias moves.

Used at full size by bench/serve_speed.py (10,000 requests, three swaps) and at a small size by
tests/serving/test_load.py. The caller starts the server; this module plans the requests, sends
them, moves the alias meanwhile, and checks the outcome:

- no answer is a 5xx, and each malformed kind gets its own 4xx (400 bad JSON, 400 missing column,
  400 wrong type, 413 oversized body, 415 wrong content type);
- every valid request is answered with 200;
- every answer names (X-Model-Version) a version that held the alias during the request's
  lifetime, as the server could know it: a version holds from the moment the alias was set to it
  until `/version` first showed its successor (the server polls the alias, so it may answer with
  the old version a little after the alias moved, never before the move);
- after a graceful shutdown, every answered row is in the prediction log, under the request id,
  with the version that answered, and nothing else is.

Requests follow a schedule (request i not before i * seconds / n, so that a fast server does not
finish before the swaps are done) with at most `connections` in flight. Swap k moves the alias
once k / (swaps + 1) of the requests were sent and the previous swap was seen; the last tenth of
the requests waits until the last swap was seen, so that traffic runs before, during and after
every swap however fast the server answers or loads a version.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_http import Connection, request_bytes

FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex")
VALID_KINDS = ("split_1_row", "records_5_rows", "csv_3_rows", "v2_2_rows")
SWAP_TIMEOUT = 120.0       # seconds; a failure detector only (a busy machine loads a 300-tree model slowly)
MALFORMED = {"bad_json": 400, "missing_column": 400, "wrong_type": 400, "oversized": 413,
             "wrong_content_type": 415}


@dataclass
class Planned:
    request_id: str
    kind: str
    rows: int                 # rows a valid request asks for (0: malformed)
    expected: int             # the status it must get
    request: bytes


@dataclass
class Outcome:
    planned: Planned
    began: float
    ended: float
    status: int | None = None
    version: str | None = None
    error: str | None = None


@dataclass
class Swap:
    version: str
    set_at: float             # just before the alias was moved
    seen_at: float = math.inf  # the first /version answer naming it


@dataclass
class Result:
    outcomes: list[Outcome]
    swaps: list[Swap]
    first_version: str
    seconds: float
    held_for_swap: float = 0.0  # seconds the last tenth waited for the last swap
    summary: dict = field(default_factory=dict)


def _valid_body(kind: str, records: list[dict], model: str) -> tuple[str, str, bytes]:
    """(path, content type, body)"""
    if kind == "split_1_row":
        body = {"dataframe_split": {"columns": list(FEATURES), "data": [[records[0][c] for c in FEATURES]]}}
        return "/invocations", "application/json", json.dumps(body).encode()
    if kind == "records_5_rows":
        return "/invocations", "application/json", json.dumps({"dataframe_records": records}).encode()
    if kind == "csv_3_rows":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(FEATURES), lineterminator="\n")
        writer.writeheader()
        writer.writerows([{c: "" if r[c] is None else r[c] for c in FEATURES} for r in records])
        return "/invocations", "text/csv", out.getvalue().encode()
    inputs = [{"name": c, "shape": [len(records)], "datatype": "BYTES" if c in ("island", "sex") else "FP64",
               "data": [r[c] for r in records]} for c in FEATURES]
    return f"/v2/models/{model}/infer", "application/json", json.dumps({"inputs": inputs}).encode()


def _malformed_body(kind: str, record: dict, max_request_bytes: int) -> tuple[str, bytes]:
    """(content type, body)"""
    if kind == "bad_json":
        return "application/json", json.dumps({"dataframe_records": [record]}).encode()[:-7]
    if kind == "missing_column":
        without = {k: v for k, v in record.items() if k != "island"}
        return "application/json", json.dumps({"dataframe_records": [without]}).encode()
    if kind == "wrong_type":
        return "application/json", json.dumps({"dataframe_records": [{**record, "bill_length_mm": "long"}]}).encode()
    if kind == "oversized":
        return "application/json", b'{"dataframe_records": [' + b" " * max_request_bytes + b"]}"
    return "text/plain", json.dumps({"dataframe_records": [record]}).encode()


def plan(records: list[dict], model: str, host: str, n: int, *, max_request_bytes: int,
         malformed_share: float = 0.1, seed: int = 7) -> list[Planned]:
    """`n` requests in a shuffled order, `malformed_share` of them malformed (spread evenly over the
    kinds), the rest spread evenly over the valid kinds; rows drawn from `records`."""
    chooser = random.Random(seed)
    bad = round(n * malformed_share)
    kinds = [list(MALFORMED)[i % len(MALFORMED)] for i in range(bad)]
    kinds += [VALID_KINDS[i % len(VALID_KINDS)] for i in range(n - bad)]
    chooser.shuffle(kinds)
    planned = []
    for i, kind in enumerate(kinds):
        request_id = f"load-{i:06d}"
        headers = {"X-Request-Id": request_id}
        if kind in MALFORMED:
            content_type, body = _malformed_body(kind, chooser.choice(records), max_request_bytes)
            request = request_bytes("POST", "/invocations", host, body, content_type, headers)
            planned.append(Planned(request_id, kind, 0, MALFORMED[kind], request))
            continue
        size = int(kind.split("_")[-2])
        path, content_type, body = _valid_body(kind, chooser.sample(records, size), model)
        planned.append(Planned(request_id, kind, size, 200, request_bytes("POST", path, host, body, content_type,
                                                                           headers)))
    return planned


async def _version(connection: Connection, host: str) -> str | None:
    answer = await connection.send(request_bytes("GET", "/version", host))
    return answer.headers.get("x-model-version") if answer.status == 200 else None


async def drive(url: str, planned: list[Planned], *, seconds: float, swap: Callable[[int], str], swaps: int = 3,
                connections: int = 16) -> Result:
    """Send `planned` over `seconds`, calling `swap(k)` (blocking: it moves the alias and returns the
    version it moved to) for k = 1..swaps meanwhile."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    origin = f"{host}:{port}"
    watch = Connection(host, port)
    first = await _version(watch, origin)
    if first is None:
        raise RuntimeError(f"{url}/version did not answer")
    outcomes: list[Outcome | None] = [None] * len(planned)
    done_swaps: list[Swap] = []
    all_seen = asyncio.Event()
    hold_from = int(len(planned) * 0.9)
    held = 0.0
    sent = 0
    start = time.perf_counter()
    cursor = iter(range(len(planned)))

    async def sender() -> None:
        nonlocal held, sent
        connection = Connection(host, port)
        for i in cursor:
            sent = i + 1
            delay = start + i * seconds / len(planned) - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i >= hold_from and not all_seen.is_set():
                waited = time.perf_counter()
                await all_seen.wait()
                held = max(held, time.perf_counter() - waited)
            item = planned[i]
            outcome = Outcome(item, began=time.perf_counter(), ended=math.nan)
            try:
                answer = await connection.send(item.request)
                outcome.status, outcome.version = answer.status, answer.headers.get("x-model-version")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.ended = time.perf_counter()
            outcomes[i] = outcome
        connection.close()

    async def swapper() -> None:
        try:
            for k in range(1, swaps + 1):
                while sent < k * len(planned) // (swaps + 1):
                    await asyncio.sleep(0.01)
                set_at = time.perf_counter()
                version = await asyncio.to_thread(swap, k)
                record = Swap(version, set_at)
                done_swaps.append(record)
                while (await _version(watch, origin)) != version:
                    if time.perf_counter() - set_at > SWAP_TIMEOUT:
                        raise AssertionError(f"the server did not serve version {version} within "
                                             f"{SWAP_TIMEOUT:.0f} s of the alias move")
                    await asyncio.sleep(0.02)
                record.seen_at = time.perf_counter()
        finally:
            all_seen.set()      # the senders' last tenth goes on, and a failure is raised below

    swapping = asyncio.create_task(swapper())
    await asyncio.gather(*(sender() for _ in range(connections)))
    await swapping
    watch.close()
    return Result([o for o in outcomes if o is not None], done_swaps, first, time.perf_counter() - start, held)


def allowed_versions(result: Result, began: float, ended: float) -> set[str]:
    """The versions that held the alias (as the server could know it) at some time in [began, ended]."""
    epochs = [(result.first_version, -math.inf, result.swaps[0].seen_at if result.swaps else math.inf)]
    for k, swap in enumerate(result.swaps):
        until = result.swaps[k + 1].seen_at if k + 1 < len(result.swaps) else math.inf
        epochs.append((swap.version, swap.set_at, until))
    return {version for version, since, until in epochs if since <= ended and began <= until}


def check(result: Result, log) -> dict:
    """Assert the load test's promises (AssertionError naming the first few offenders); return a
    summary. `log` is the prediction log read after the server's graceful shutdown."""
    outcomes = result.outcomes
    failed = [o for o in outcomes if o.error is not None]
    assert not failed, f"{len(failed)} requests got no answer, e.g. {failed[0].planned.request_id}: {failed[0].error}"
    server_errors = [o for o in outcomes if o.status >= 500]
    assert not server_errors, f"{len(server_errors)} 5xx answers, e.g. {_show(server_errors[0])}"
    wrong = [o for o in outcomes if o.status != o.planned.expected]
    assert not wrong, f"{len(wrong)} answers with an unexpected status, e.g. {_show(wrong[0])}"
    answered = [o for o in outcomes if o.planned.rows]
    stray = [o for o in answered if o.version not in allowed_versions(result, o.began, o.ended)]
    assert not stray, (f"{len(stray)} answers from a version that did not hold the alias meanwhile, e.g. "
                       f"{_show(stray[0])}; swaps: {result.swaps}")
    assert all(s.seen_at < math.inf for s in result.swaps), f"a swap was never seen: {result.swaps}"

    expected = {}
    for o in answered:
        ids = [o.planned.request_id] if o.planned.rows == 1 else [f"{o.planned.request_id}/{i}"
                                                                    for i in range(o.planned.rows)]
        expected.update(dict.fromkeys(ids, o.version))
    logged = dict(zip(log["request_id"], log["model_version"]))
    missing = [rid for rid in expected if rid not in logged]
    assert not missing, f"{len(missing)} answered rows are not in the prediction log, e.g. {missing[:3]}"
    assert len(log) == len(expected), f"the log holds {len(log)} rows for {len(expected)} answered rows"
    mismatched = [rid for rid, version in expected.items() if logged[rid] != version]
    assert not mismatched, f"{len(mismatched)} logged rows name another version than the answer, e.g. {mismatched[:3]}"

    straddling = sum(1 for o in answered if len(allowed_versions(result, o.began, o.ended)) > 1)
    return {"requests": len(outcomes), "malformed": len(outcomes) - len(answered), "valid_answered": len(answered),
            "rows_logged": len(log), "statuses": dict(sorted(Counter(o.status for o in outcomes).items())),
            "by_kind": dict(sorted(Counter(o.planned.kind for o in outcomes).items())),
            "answers_by_version": dict(sorted(Counter(o.version for o in answered).items())),
            "swaps_seen_after_s": [round(s.seen_at - s.set_at, 2) for s in result.swaps],
            "answers_spanning_a_swap": straddling, "seconds": round(result.seconds, 1),
            "held_for_last_swap_s": round(result.held_for_swap, 2)}


def _show(outcome: Outcome) -> str:
    return (f"{outcome.planned.request_id} ({outcome.planned.kind}): status {outcome.status}, version "
            f"{outcome.version}, expected {outcome.planned.expected}")
