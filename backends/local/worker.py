"""Worker processes of the local runner, forked from one zygote: `python -m mlopsc.backends.local.worker FD`.

The zygote is started once per run. It imports what the steps will need (pandas, scikit-learn,
MLflow's store, ...) in the order the runner asks, and forks a worker on request, so a worker
starts with those modules already imported: a second worker costs a fork, not seconds of imports.
The zygote never opens an MLflow store or a file a worker will use; its workers do.

The zygote reads datagrams on the control socket FD (a socketpair with the runner):
    {"op": "import", "modules": [...]}         queue imports ("module", or "mlopsc.runtime.module:function"
                                                to call a function that fills a cache); one that fails
                                                is skipped
    {"op": "fork", "after": N, "log": path}     + one fd (a socketpair end): fork a worker that
                                                talks over it, once the first N queued imports
                                                are done (0: at once, before any queued import)
    {"op": "exit"}                              wait for the workers to end, then exit
and answers {"done": N} after each import, so the runner knows what a new fork would have.

A worker leads its own process group and lives for the whole run, executing many steps. It says
{"hello": pid, "modules": [what the zygote had imported]} first, then reads one JSON request per
line and answers one JSON line on its socket; what steps print goes to the step's log file (else
the worker's log), never into the protocol.

Requests:
    {"op": "step", "id", "step": IR JSON, "inputs": {field: uri}, "base": folder, "context", "log"}
    {"op": "call", "id", "target": "mlopsc.runtime.MODULE:FUNCTION", "context", "args": [...], "log"}
        -> FUNCTION(RunContext(**context), *args)
Answers: {"id", "started": wall clock} when it begins, then
    {"id", "ok": true, "result": ...} | {"id", "ok": false, "error": {...}}
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any


def _watch_parent(parent: int) -> None:
    """Die with the zygote, which dies with the runner: after a kill -9 of the runner a worker
    must not go on writing artifacts no one will record. The worker leads its own process group,
    so this also ends the processes a step started (joblib workers of a grid search)."""
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)


def _import(name: str) -> None:
    """Import "module", or import "mlopsc.runtime.module:function" and call the function (it
    fills a cache the forks inherit)."""
    module, _, function = name.partition(":")
    try:
        imported = importlib.import_module(module)
        if function and module.startswith("mlopsc.runtime."):
            getattr(imported, function)()
    except Exception:  # noqa: BLE001 - importing ahead is an optimisation; a step reports its own failure
        traceback.print_exc()


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


def serve(channel: socket.socket, parent: int, modules: list[str]) -> None:
    """A worker's loop: answer requests until the runner closes its end of the channel."""
    requests = channel.makefile("r", encoding="utf-8")
    answers = channel.makefile("w", encoding="utf-8")
    answers.write(json.dumps({"hello": os.getpid(), "modules": modules}) + "\n")
    answers.flush()
    saved = (os.dup(1), os.dup(2))
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    for line in requests:
        request = json.loads(line)
        answers.write(json.dumps({"id": request["id"], "started": time.time()}) + "\n")
        answers.flush()
        _redirect(request.get("log"), saved)
        try:
            result = _run_step(request) if request["op"] == "step" else _call(request)
            answer = {"id": request["id"], "ok": True, "result": result}
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the runner as data
            answer = {"id": request["id"], "ok": False, "error": _error(exc)}
        finally:
            _redirect(None, saved)
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()
    # The runner closed the channel: every answer is written and every artifact committed. Skip the
    # interpreter's teardown (seconds with MLflow, SQLAlchemy and joblib loaded).
    os._exit(0)


def _fork(control: socket.socket, fd: int, log: str, modules: list[str]) -> int:
    zygote = os.getpid()
    # The imported modules' objects go to the garbage collector's permanent generation: a
    # worker's collections then never walk (and write to) them, so the pages it shares with the
    # zygote stay shared rather than being copied into each worker.
    gc.freeze()
    pid = os.fork()
    if pid:
        os.close(fd)      # the worker has its own copy
        return pid
    try:
        control.close()
        os.setsid()
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        serve(socket.socket(fileno=fd), zygote, modules)
    except BaseException:  # noqa: BLE001 - into the worker's log; the runner sees the channel close
        traceback.print_exc()
    finally:
        os._exit(1)       # never return into the zygote's loop


def _reap(children: set[int], block: bool = False) -> None:
    """Wait for ended workers (so that their CPU time counts as the runner's children's)."""
    for pid in list(children):
        try:
            if os.waitpid(pid, 0 if block else os.WNOHANG)[0]:
                children.discard(pid)
        except ChildProcessError:
            children.discard(pid)


def zygote(fd: int) -> None:
    control = socket.socket(fileno=fd)
    runner = os.getppid()
    queued: list[str] = []
    done = 0
    forks: list[tuple[int, int, str]] = []            # (after, fd, log), in the order asked
    children: set[int] = set()
    while os.getppid() == runner:
        _reap(children)
        busy = done < len(queued) or any(after <= done for after, _, _ in forks)
        control.settimeout(0 if busy else 0.25)
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        except (BlockingIOError, TimeoutError):
            data = None
        if data:      # one message per turn: a fork asked now goes before the imports still queued
            request = json.loads(data)
            if request["op"] == "import":
                queued += request["modules"]
            elif request["op"] == "fork":
                forks.append((min(request["after"], len(queued)), fds[0], request["log"]))
            elif request["op"] == "exit":     # the runner closed every worker: wait for them
                _reap(children, block=True)
                break
            continue
        ready = [f for f in forks if f[0] <= done]
        for fork in ready:
            forks.remove(fork)
            children.add(_fork(control, fork[1], fork[2], queued[:done]))
        if not ready and done < len(queued):
            _import(queued[done])
            done += 1
            control.send(json.dumps({"done": done}).encode())
    os._exit(0)           # also when the runner is gone: our workers notice and end themselves


if __name__ == "__main__":
    zygote(int(sys.argv[1]))
