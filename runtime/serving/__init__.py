"""`mlopsc serve`: a model server that follows the registry and logs what it predicts.

See README.md in this folder for its contracts. Importing this package is cheap; `starlette`,
`uvicorn` and `prometheus_client` (the `serve` install extra) load with the modules that use them.
"""
from __future__ import annotations

from typing import Any


def read_prediction_log(uri: str, since: Any = None) -> Any:
    """Every logged prediction row under a server's log URI, oldest first (see prediction_log.py)."""
    from .prediction_log import read_prediction_log as read

    return read(uri, since)


def read_feedback_log(uri: str, since: Any = None) -> Any:
    """Every feedback row (`request_id`, `label`, `timestamp`) under a server's log URI, oldest first."""
    from .prediction_log import read_feedback_log as read

    return read(uri, since)
