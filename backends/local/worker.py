"""One worker process of the local runner: `python -m mlopsc.backends.local.worker`.

A worker lives for a whole run and executes many steps, so pandas, scikit-learn and MLflow are
imported once per worker rather than once per step. It reads one JSON request per line on stdin
and answers one JSON line on the protocol pipe (its original stdout); what steps print goes to
the step's log file, never into the protocol.

Requests:
    {"op": "step", "id", "step": IR JSON, "inputs": {field: uri}, "base": folder, "context", "log"}
    {"op": "call", "id", "target": "mlopsc.runtime.MODULE:FUNCTION", "context", "args": [...], "log"}
        -> FUNCTION(RunContext(**context), *args)
    {"op": "warm", "modules": [...]}         import ahead of need, no answer
Answers:
    {"id", "ok": true, "result": ...} | {"id", "ok": false, "error": {...}}
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any


def _watch_parent(parent: int) -> None:
    """Die with the runner: after a kill -9 of the runner a worker must not go on writing
    artifacts no one will record. The worker leads its own process group, so this also ends
    the processes a step started (joblib workers of a grid search)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)


def _error(exc: BaseException) -> dict[str, Any]:
    from mlopsc.runtime.core import StepError, StepFailed

    if isinstance(exc, StepError):
        return {
            "type": "failed" if isinstance(exc, StepFailed) else "error",
            "message": exc.message, "step": exc.step,
            "span": exc.span.model_dump() if exc.span is not None else None,
            "expected": exc.expected, "found": exc.found,
            "reason": getattr(exc, "reason", None), "result": getattr(exc, "result", None),
        }
    return {"type": "internal", "message": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()}


def _run_step(request: dict[str, Any]) -> Any:
    from mlopsc.compiler import ir
    from mlopsc.runtime import artifacts, execute

    node = ir.step_from_json(request["step"])
    outputs = artifacts.output_uris(request["base"], node)
    return execute(node, request["inputs"], outputs, request["context"])


def _call(request: dict[str, Any]) -> Any:
    module, _, name = request["target"].partition(":")
    if not module.startswith("mlopsc.runtime"):
        raise ValueError(f"a worker only calls into mlopsc.runtime, not {module}")
    from mlopsc.runtime import RunContext

    function = getattr(importlib.import_module(module), name)
    return function(RunContext.from_any(request["context"]), *request.get("args", []))


def _redirect(path: str | None, saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if path is None:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)   # stray prints of imported libraries must not corrupt the protocol
    saved = (os.dup(1), os.dup(2))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "warm":
            for module in request["modules"]:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass   # warming is an optimisation; the step reports a missing library itself
            continue
        _redirect(request.get("log"), saved)
        try:
            result = _run_step(request) if request["op"] == "step" else _call(request)
            answer = {"id": request["id"], "ok": True, "result": result}
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the runner as data
            answer = {"id": request["id"], "ok": False, "error": _error(exc)}
        finally:
            _redirect(None, saved)
        protocol.write(json.dumps(answer, default=str) + "\n")
    # The runner closed our stdin: every answer is written and every artifact committed. Skip the
    # interpreter's teardown (seconds with MLflow, SQLAlchemy and joblib loaded).
    protocol.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
