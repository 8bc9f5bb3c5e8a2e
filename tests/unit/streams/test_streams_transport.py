"""Eager start of faust's per-record hand-over: same outcomes as awaiting the coroutine."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import aiokafka
import faust
import pytest
from faust.types import TP

from streams.transport import (
    FETCH_MAX_WAIT_MS,
    EagerConsumer,
    IntakeThread,
    limit_fetch_wait,
    start_eagerly,
)


async def _put(queue: asyncio.Queue[int], value: int) -> str:
    await queue.put(value)
    return "put"


def test_a_coroutine_that_never_waits_finishes_on_the_spot() -> None:
    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=2)
        tasks_before = len(asyncio.all_tasks())
        assert start_eagerly(_put(queue, 1)) == (True, "put")
        assert queue.get_nowait() == 1
        assert len(asyncio.all_tasks()) == tasks_before

    asyncio.run(main())


def test_a_coroutine_that_must_wait_continues_when_awaited() -> None:
    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)  # full: the put has to wait for a get
        finished, rest = start_eagerly(_put(queue, 1))
        assert not finished
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        assert not task.done()
        assert queue.get_nowait() == 0
        assert await asyncio.wait_for(task, 5) == "put"
        assert queue.get_nowait() == 1

    asyncio.run(main())


def test_cancelling_the_rest_cancels_the_coroutine() -> None:
    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        cleaned: list[bool] = []

        async def put_then_clean() -> None:
            try:
                await queue.put(1)
            finally:
                cleaned.append(True)

        finished, rest = start_eagerly(put_then_clean())
        assert not finished
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == [True]
        assert queue.qsize() == 1  # the value never went in

    asyncio.run(main())


def test_errors_come_out_where_they_would_have() -> None:
    async def fails_at_once() -> None:
        raise ValueError("at once")

    async def fails_later(fut: asyncio.Future[None]) -> None:
        await fut
        raise KeyError("later")

    async def main() -> None:
        with pytest.raises(ValueError, match="at once"):
            start_eagerly(fails_at_once())
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        finished, rest = start_eagerly(fails_later(fut))
        assert not finished
        task = asyncio.ensure_future(rest)
        fut.set_result(None)
        with pytest.raises(KeyError):
            await task

    asyncio.run(main())


class _Thread:
    """The consumer thread's seek, recorded (no broker)."""

    def __init__(self) -> None:
        self.seeks: list[tuple[Any, int]] = []

    def seek(self, partition: Any, offset: int) -> None:
        self.seeks.append((partition, offset))


def _consumer(committed: dict[Any, int | None], first: dict[Any, int]) -> Any:
    """An `EagerConsumer` without faust's start-up: what `perform_seek` reads."""
    consumer: Any = EagerConsumer.__new__(EagerConsumer)
    consumer.app = SimpleNamespace(gap_free_topics=frozenset({"capture.events"}))
    consumer._thread = _Thread()
    consumer._read_offset = {}
    consumer._committed_offset = {}
    consumer.log = SimpleNamespace(dev=lambda *a, **k: None)

    async def seek_to_committed() -> dict[Any, int | None]:
        return dict(committed)

    async def earliest_offsets(*tps: Any) -> dict[Any, int]:
        return {tp: first[tp] for tp in tps}

    consumer.seek_to_committed = seek_to_committed
    consumer.earliest_offsets = earliest_offsets
    return consumer


def test_a_partition_without_a_committed_offset_is_read_from_its_first_record() -> None:
    # faust drops what a fetch brought while the flow was suspended and seeks back
    # to the committed offsets; with none, aiokafka left the position past those
    # records and the worker took nothing more from the partition.
    fresh, resumed, changelog = (
        TP("capture.events", 0),
        TP("capture.events", 1),
        TP("devices-changelog", 0),
    )
    consumer = _consumer({fresh: None, resumed: 7, changelog: None}, {fresh: 3, changelog: 0})

    asyncio.run(consumer.perform_seek())

    assert consumer._thread.seeks == [(fresh, 3)]  # the resumed one was sought by aiokafka
    assert consumer.ledger.expected(fresh) == 3
    assert consumer.ledger.expected(resumed) == 7
    assert consumer.ledger.expected(changelog) is None  # faust's path, unchanged


def test_the_worker_consumer_asks_the_broker_to_hold_a_fetch_briefly() -> None:
    # faust fixes aiokafka's fetch_max_wait_ms at 1,500 ms: the intake stalled
    # for a second at a time under load (streams.transport.limit_fetch_wait)
    async def build() -> Any:
        return aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")

    consumer = asyncio.run(build())
    assert consumer._fetch_max_wait_ms == 500  # aiokafka's own default
    limit_fetch_wait(consumer, FETCH_MAX_WAIT_MS)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    # ... and aiokafka hands that attribute to its fetcher when it starts
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start
    )
    with pytest.raises(RuntimeError, match="no _fetch_max_wait_ms"):
        limit_fetch_wait(SimpleNamespace(), 100)


def test_the_worker_consumer_runs_on_the_intake_thread() -> None:
    async def build() -> Any:
        consumer: Any = EagerConsumer.__new__(EagerConsumer)
        consumer.loop = asyncio.get_running_loop()
        consumer.beacon = None
        consumer.app = faust.App("intake-test", broker="kafka://127.0.0.1:1")
        consumer.transport = SimpleNamespace(app=consumer.app)
        return consumer._new_consumer_thread()

    assert isinstance(asyncio.run(build()), IntakeThread)
