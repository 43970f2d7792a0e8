"""The load test at test size: 1,500 requests, a tenth of them malformed (five kinds), while the
alias moves three times to newly registered versions. The traffic and the checks are
bench/serve_load.py's, which bench/serve_speed.py runs at 10,000 requests: no 5xx, each malformed
kind its own 4xx, every valid request answered by a version that held the alias meanwhile, and
every answered row in the prediction log after a graceful shutdown."""
from __future__ import annotations

import asyncio
import signal
import sys

from conftest import LOAD_ALIAS, LOAD_MAX_REQUEST_BYTES, REPO, wait_ready
from mlopsc.runtime import registry
from mlopsc.runtime.serving import read_prediction_log

sys.path.insert(0, str(REPO / "bench"))

from serve_load import check, drive, plan


def test_malformed_traffic_over_three_swaps(launched, store, rows):
    server = wait_ready(launched["load"])
    client = registry.client(store.uri)

    def swap(k: int) -> str:
        """A new version of the tree's or the forest's model files, in turn, and the alias on it."""
        new = client.create_model_version(store.name, source=store.models["2" if k % 2 else "1"], run_id=None)
        client.set_registered_model_alias(store.name, LOAD_ALIAS, str(new.version))
        return str(new.version)

    planned = plan(rows, store.name, server.url.removeprefix("http://"), 1500,
                   max_request_bytes=LOAD_MAX_REQUEST_BYTES)
    result = asyncio.run(drive(server.url, planned, seconds=5.0, swap=swap, swaps=3))
    # uvicorn shuts down gracefully, then re-raises the signal: the status is SIGTERM's own.
    assert server.stop() in (0, -signal.SIGTERM), server.text()[-3000:]
    summary = check(result, read_prediction_log(str(server.log_dir)))
    assert len(summary["answers_by_version"]) == 4, summary      # version 1 and each swap's version
    assert summary["malformed"] == 150 and summary["valid_answered"] == 1350
