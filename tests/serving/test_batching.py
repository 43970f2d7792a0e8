"""The batching dispatcher on its own: it gathers concurrent calls, hands each caller its own
results in order, keeps to the batch size and the wait, and never mixes keys."""
from __future__ import annotations

import asyncio
import time

import pytest
from mlopsc.runtime.serving.batching import BatchDispatcher


class Recorder:
    """A handler that doubles each item and records the batches it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[tuple[object, list[int]]] = []
        self.delay = delay

    def __call__(self, key, items):
        self.batches.append((key, list(items)))
        time.sleep(self.delay)
        return [item * 2 for item in items]


def run(coro):
    return asyncio.run(coro)


async def _submit_all(dispatcher: BatchDispatcher, items: list[int], key="m", rows=None):
    dispatcher.start()
    try:
        return await asyncio.gather(*(dispatcher.submit(key, i, (rows or {}).get(i, 1)) for i in items))
    finally:
        await dispatcher.close()


def test_concurrent_calls_are_one_batch_and_each_gets_its_own_result():
    handler = Recorder()
    results = run(_submit_all(BatchDispatcher(handler, max_batch_size=32, max_wait=0.05), list(range(10))))
    assert results == [i * 2 for i in range(10)]
    assert handler.batches == [("m", list(range(10)))]


def test_batches_keep_to_the_maximum_size_in_arrival_order():
    handler = Recorder()
    results = run(_submit_all(BatchDispatcher(handler, max_batch_size=4, max_wait=0.05), list(range(10))))
    assert results == [i * 2 for i in range(10)]
    assert [items for _, items in handler.batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_rows_count_toward_the_size_and_a_large_item_goes_alone():
    handler = Recorder()
    rows = {0: 3, 1: 3, 2: 50, 3: 1}
    results = run(_submit_all(BatchDispatcher(handler, max_batch_size=6, max_wait=0.05), [0, 1, 2, 3], rows=rows))
    assert results == [0, 2, 4, 6]
    assert [items for _, items in handler.batches] == [[0, 1], [2], [3]]


def test_a_batch_waits_for_late_arrivals_up_to_max_wait():
    async def scenario(max_wait: float) -> list[list[int]]:
        handler = Recorder()
        dispatcher = BatchDispatcher(handler, max_batch_size=32, max_wait=max_wait)
        dispatcher.start()

        async def late(item: int, after: float) -> int:
            await asyncio.sleep(after)
            return await dispatcher.submit("m", item, 1)

        started = time.perf_counter()
        assert await asyncio.gather(late(1, 0), late(2, 0.05)) == [2, 4]
        elapsed = time.perf_counter() - started
        await dispatcher.close()
        return [items for _, items in handler.batches], elapsed

    batches, elapsed = run(scenario(0.5))
    assert batches == [[1, 2]]
    assert elapsed >= 0.5            # the batch was held open for the whole wait
    batches, _ = run(scenario(0.0))
    assert batches == [[1], [2]]     # no wait: the first is answered alone


def test_items_of_different_keys_are_never_in_one_batch():
    async def scenario():
        handler = Recorder()
        dispatcher = BatchDispatcher(handler, max_batch_size=32, max_wait=0.05)
        dispatcher.start()
        old, new = object(), object()
        results = await asyncio.gather(dispatcher.submit(old, 1, 1), dispatcher.submit(old, 2, 1),
                                       dispatcher.submit(new, 3, 1), dispatcher.submit(old, 4, 1))
        await dispatcher.close()
        return results, [(key is old, items) for key, items in handler.batches]

    results, batches = run(scenario())
    assert results == [2, 4, 6, 8]
    assert batches == [(True, [1, 2]), (False, [3]), (True, [4])]


def test_while_the_model_works_the_next_batch_gathers():
    async def scenario():
        handler = Recorder(delay=0.2)
        dispatcher = BatchDispatcher(handler, max_batch_size=32, max_wait=0.0)
        dispatcher.start()
        first = asyncio.ensure_future(dispatcher.submit("m", 0, 1))
        await asyncio.sleep(0.05)          # the first batch is computing now
        rest = [dispatcher.submit("m", i, 1) for i in range(1, 6)]
        results = await asyncio.gather(first, *rest)
        await dispatcher.close()
        return results, [items for _, items in handler.batches]

    results, batches = run(scenario())
    assert results == [0, 2, 4, 6, 8, 10]
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_a_failing_handler_fails_every_caller_of_its_batch_and_the_next_batch_still_runs():
    calls = []

    def handler(key, items):
        calls.append(list(items))
        if len(calls) == 1:
            raise ValueError("model broke")
        return list(items)

    async def scenario():
        dispatcher = BatchDispatcher(handler, max_batch_size=2, max_wait=0.05)
        dispatcher.start()
        results = await asyncio.gather(*(dispatcher.submit("m", i, 1) for i in range(3)), return_exceptions=True)
        await dispatcher.close()
        return results

    results = run(scenario())
    assert [type(r) for r in results[:2]] == [ValueError, ValueError]
    assert results[2] == 2


def test_close_answers_what_was_queued():
    async def scenario():
        handler = Recorder(delay=0.05)
        dispatcher = BatchDispatcher(handler, max_batch_size=2, max_wait=0.0)
        dispatcher.start()
        pending = [asyncio.ensure_future(dispatcher.submit("m", i, 1)) for i in range(5)]
        await asyncio.sleep(0)             # all five are queued
        await dispatcher.close()
        return [p.result() for p in pending]

    assert run(scenario()) == [0, 2, 4, 6, 8]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        BatchDispatcher(Recorder(), max_batch_size=0)
