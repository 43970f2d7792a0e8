"""A bounded pool of persistent worker processes (see worker.py) that can kill one task.

concurrent.futures cannot stop a running task, and a step's timeout must: each worker here is a
process group of its own, so killing it also ends what the step started. Workers are forked
from one zygote process that imports what the steps need (`preload`) while the first steps run,
so a later worker starts in milliseconds with pandas, scikit-learn and MLflow imported. Workers
start lazily, up to `size`; a new one replaces a killed one, and an idle one that lacks modules
the zygote has imported since it was forked.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

Events = queue.Queue[tuple[int, dict[str, Any] | None]]


class Worker:
    def __init__(self, index: int, channel: socket.socket, events: Events, warmed: list[str]) -> None:
        self.index = index
        self.channel = channel
        self.pid: int | None = None        # known once the worker says hello
        self.busy: int | None = None       # id of the task it is running
        self.tasks_done = 0
        self.warmed = set(warmed)
        self._hello = threading.Event()
        self._writer = channel.makefile("w", encoding="utf-8")
        self._reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._reader.start()

    def _read(self, events: Events) -> None:
        for line in self.channel.makefile("r", encoding="utf-8"):
            message = json.loads(line)
            if "hello" in message:
                self.pid = message["hello"]
                self.warmed |= set(message["modules"])
                self._hello.set()
            else:
                events.put((self.index, message))
        self._hello.set()
        events.put((self.index, None))     # the worker is gone

    def send(self, request: dict[str, Any]) -> None:
        self._writer.write(json.dumps(request, default=str) + "\n")
        self._writer.flush()

    @property
    def alive(self) -> bool:
        return self._reader.is_alive()

    def kill(self) -> None:
        self._hello.wait(timeout=60)       # a fork the zygote has not made yet cannot be killed
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(5)

    def wait(self, timeout: float) -> None:
        self._reader.join(timeout=timeout)

    def close(self) -> None:
        """Close our end: the worker finishes its current request, then exits."""
        try:
            self.channel.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class WorkerPool:
    def __init__(self, size: int, log_dir: Path) -> None:
        self.size = max(1, size)
        self.log_dir = log_dir
        self.events: Events = queue.Queue()
        self.workers: dict[int, Worker] = {}
        self.preloaded: list[str] = []     # asked of the zygote, in order
        self.imported = 0                  # how many of them it has imported (it reports)
        self._zygote: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._next_index = 0
        self._next_id = 0

    def _start_zygote(self) -> socket.socket:
        if self._control is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            with open(self.log_dir / "zygote.log", "ab") as log:
                self._zygote = subprocess.Popen(
                    [sys.executable, "-m", "mlopsc.backends.local.worker", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                )
            theirs.close()
            self._control = ours
            threading.Thread(target=self._read_reports, args=(ours,), daemon=True).start()
        return self._control

    def _read_reports(self, control: socket.socket) -> None:
        control.settimeout(0.5)
        while self._control is control:
            try:
                self.imported = json.loads(control.recv(1 << 16))["done"]
            except (TimeoutError, OSError, ValueError):
                continue

    def preload(self, modules: tuple[str, ...]) -> None:
        """Have the zygote import these; workers forked afterwards start with them imported."""
        missing = [m for m in dict.fromkeys(modules) if m not in self.preloaded]
        if missing:
            self._start_zygote().send(json.dumps({"op": "import", "modules": missing}).encode())
            self.preloaded += missing

    def idle_worker(self, warm: tuple[str, ...] = ()) -> Worker | None:
        """An idle worker, preferring one that already imported what the task needs, else a new
        one while the pool is below its size. An idle worker that lacks modules the task needs
        which the zygote has imported since, or is importing, is replaced by a fresh fork: a
        fork costs milliseconds, importing them again seconds."""
        idle = [w for w in self.workers.values() if w.busy is None and w.alive]
        if not idle:
            return self.start_worker() if len(self.workers) < self.size else None
        best = max(idle, key=lambda w: (len(w.warmed & set(warm)), w.tasks_done))
        coming = [i for i, module in enumerate(self.preloaded) if module in set(warm) - best.warmed]
        if coming:
            best.close()
            self.workers.pop(best.index)
            return self.start_worker(after=max(coming) + 1)
        return best

    def start_worker(self, after: int | None = None) -> Worker:
        """Fork a worker from the zygote once it has imported the first `after` modules asked
        of it (None: all asked so far). This does not wait: requests sent to the worker wait in
        its channel until the zygote has forked it."""
        index = self._next_index
        self._next_index += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        after = len(self.preloaded) if after is None else after
        request = {"op": "fork", "after": after, "log": str(self.log_dir / f"worker-{index}.log")}
        socket.send_fds(self._start_zygote(), [json.dumps(request).encode()], [theirs.fileno()])
        theirs.close()
        worker = Worker(index, ours, self.events, self.preloaded[:max(after, self.imported)])
        self.workers[index] = worker
        return worker

    def submit(self, worker: Worker, request: dict[str, Any], warm: tuple[str, ...] = ()) -> int:
        self._next_id += 1
        worker.busy = self._next_id
        worker.warmed |= set(warm)
        worker.send({**request, "id": self._next_id})
        return self._next_id

    def call(self, target: str, context: dict[str, Any], *args: Any, log: Path | None = None,
             worker: Worker | None = None) -> Any:
        """Run one runtime function in a worker and wait for it (MLflow set-up and lineage run
        in workers so that the runner process never imports MLflow)."""
        worker = worker or self.idle_worker(("mlflow",))
        if worker is None:
            raise RuntimeError("no idle worker for a call")
        task = self.submit(worker, {"op": "call", "target": target, "context": context, "args": list(args),
                                    "log": str(log) if log else None}, ("mlflow",))
        others = []    # answers of steps running in other workers, kept for the scheduler
        try:
            while True:
                index, answer = self.events.get()
                if index != worker.index:
                    others.append((index, answer))
                    continue
                if answer is None:
                    worker.busy = None
                    self.workers.pop(worker.index, None)
                    raise RuntimeError(f"a worker died during {target}; see {self.log_dir}")
                if answer["id"] == task and "started" not in answer:
                    worker.busy = None
                    worker.tasks_done += 1
                    return answer
        finally:
            for event in others:
                self.events.put(event)

    def kill(self, worker: Worker) -> None:
        worker.kill()
        self.workers.pop(worker.index, None)

    def close(self, kill: bool = False) -> None:
        workers = list(self.workers.values())
        for worker in workers:
            worker.kill() if kill else worker.close()
        for worker in workers:
            worker.wait(5)
            if worker.alive:
                worker.kill()
        self.workers.clear()
        if self._zygote is None:
            return
        control, zygote, self._control, self._zygote = self._control, self._zygote, None, None
        try:
            control.send(json.dumps({"op": "exit"}).encode())
            zygote.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if zygote.poll() is None:       # it holds nothing: no store, no artifact
            os.killpg(zygote.pid, signal.SIGKILL)
            zygote.wait()
        control.close()
