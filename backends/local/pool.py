"""A bounded pool of persistent worker processes (see worker.py) that can kill one task.

concurrent.futures cannot stop a running task, and a step's timeout must: each worker here is a
process group of its own, so killing it also ends what the step started. Workers start lazily,
up to `size`, and a new one replaces a killed one.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


class Worker:
    def __init__(self, index: int, events: queue.Queue[tuple[int, dict[str, Any] | None]],
                 log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlopsc.backends.local.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                start_new_session=True, env=env, text=True, bufsize=1,
            )
        self.index = index
        self.busy: int | None = None      # id of the task it is running
        self.tasks_done = 0
        self.warmed: set[str] = set()
        threading.Thread(target=self._read, args=(events,), daemon=True).start()

    def _read(self, events: queue.Queue[tuple[int, dict[str, Any] | None]]) -> None:
        for line in self.process.stdout:
            events.put((self.index, json.loads(line)))
        events.put((self.index, None))     # the worker is gone

    def send(self, request: dict[str, Any]) -> None:
        self.process.stdin.write(json.dumps(request, default=str) + "\n")
        self.process.stdin.flush()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


class WorkerPool:
    def __init__(self, size: int, log_dir: Path) -> None:
        self.size = max(1, size)
        self.log_dir = log_dir
        self.events: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        self.workers: dict[int, Worker] = {}
        self._next_index = 0
        self._next_id = 0

    def idle_worker(self, warm: tuple[str, ...] = ()) -> Worker | None:
        """An idle worker, preferring one that already imported what the task needs (fewer
        imports in total), else a new one while the pool is below its size."""
        idle = [w for w in self.workers.values() if w.busy is None and w.alive]
        if idle:
            return max(idle, key=lambda w: (len(w.warmed & set(warm)), w.tasks_done))
        if len(self.workers) < self.size:
            return self.start_worker()
        return None

    def start_worker(self) -> Worker:
        index = self._next_index
        self._next_index += 1
        worker = Worker(index, self.events, self.log_dir / f"worker-{index}.log")
        self.workers[index] = worker
        return worker

    def submit(self, worker: Worker, request: dict[str, Any], warm: tuple[str, ...] = ()) -> int:
        self._next_id += 1
        worker.busy = self._next_id
        worker.warmed |= set(warm)
        worker.send({**request, "id": self._next_id})
        return self._next_id

    def warm(self, worker: Worker, modules: tuple[str, ...]) -> None:
        worker.warmed |= set(modules)
        worker.send({"op": "warm", "modules": list(modules)})

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
                worker.busy = None
                if answer is None:
                    self.workers.pop(worker.index, None)
                    raise RuntimeError(f"a worker died during {target}; see {self.log_dir}")
                if answer["id"] == task:
                    worker.tasks_done += 1
                    return answer
        finally:
            for event in others:
                self.events.put(event)

    def kill(self, worker: Worker) -> None:
        worker.kill()
        self.workers.pop(worker.index, None)

    def close(self, kill: bool = False) -> None:
        if kill:
            for worker in list(self.workers.values()):
                worker.kill()
        for worker in list(self.workers.values()):
            try:
                worker.process.stdin.close()
            except OSError:
                pass
        for worker in list(self.workers.values()):
            try:
                worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.workers.clear()
