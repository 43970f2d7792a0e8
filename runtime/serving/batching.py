"""Adaptive batching: concurrent requests answered by one call of the model.

`BatchDispatcher.submit(key, item, rows)` is awaited by a request handler on the event loop. One
task takes the queued items in arrival order and gathers them into a batch until it holds
`max_batch_size` rows, or `max_wait` seconds passed since its first item, or the next item has
another key (requests checked against another model version are never mixed into one call). The
batch goes to `handler(key, items) -> results` (one result per item, in order) on one worker
thread, so the event loop keeps accepting requests while the model computes; whatever arrives
meanwhile forms the next batch, which is how batches grow with load. A single item larger than
`max_batch_size` goes alone. A handler error fails every item of its batch.

Knows nothing about models or HTTP: tested on its own (tests/serving/test_batching.py).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class _Pending:
    key: Any
    item: Any
    rows: int
    future: asyncio.Future


_STOP = object()


class BatchDispatcher:
    def __init__(self, handler: Callable[[Any, Sequence[Any]], Sequence[Any]], *, max_batch_size: int = 32,
                 max_wait: float = 0.005, on_batch: Callable[[int, int], None] | None = None) -> None:
        if max_batch_size < 1 or max_wait < 0:
            raise ValueError("max_batch_size must be 1 or more and max_wait 0 or more")
        self.handler = handler
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.on_batch = on_batch            # (items, rows) of each batch, for metrics
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Pending | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlopsc-predict")

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mlopsc-batching")

    async def submit(self, key: Any, item: Any, rows: int) -> Any:
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("the batch dispatcher is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(key, item, rows, future))
        return await future

    async def close(self) -> None:
        """Answer everything queued so far, then stop."""
        if self._task is not None and not self._task.done():
            self._queue.put_nowait(_STOP)
            await self._task
        self._executor.shutdown(wait=True)

    async def _next(self, timeout: float | None) -> Any:
        if self._carry is not None:
            carried, self._carry = self._carry, None
            return carried
        if timeout is None:
            return await self._queue.get()
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if timeout <= 0:
            raise TimeoutError
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._next(None)
            if first is _STOP:
                return
            batch, rows = [first], first.rows
            deadline = loop.time() + self.max_wait
            while rows < self.max_batch_size:
                try:
                    pending = await self._next(deadline - loop.time())
                except TimeoutError:
                    break
                if pending is _STOP:
                    stopping = True
                    break
                if pending.key is not first.key or rows + pending.rows > self.max_batch_size:
                    self._carry = pending
                    break
                batch.append(pending)
                rows += pending.rows
            await self._answer(loop, batch, rows)

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending], rows: int) -> None:
        live = [p for p in batch if not p.future.done()]   # a caller that went away is not computed
        if not live:
            return
        if self.on_batch is not None:
            self.on_batch(len(live), sum(p.rows for p in live))
        try:
            results = await loop.run_in_executor(self._executor, self.handler, live[0].key,
                                                 [p.item for p in live])
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, result in zip(live, results):
            if not pending.future.done():
                pending.future.set_result(result)
