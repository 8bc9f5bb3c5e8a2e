"""The worker's consumer loses no record of capture.events around faust's
post-recovery seek, and never commits past an offset that was not processed.

The consumer under test is the worker's own (`streams.transport.EagerConsumer`,
faust's aiokafka consumer with its fetch loop), driven by a scripted broker in
place of the aiokafka thread: a log of records, a fetch position with
aiokafka's semantics (a seek drops what was fetched and not yet returned) and
a committed offset. The scenario is the one faust runs when table recovery
ends: partitions resumed, records flowing, ``perform_seek()`` awaited (a
broker round trip) and then ``flow_control.resume()``, which clears the
agents' queues. It is run with the seek landing after each hand-over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP as TopicPartition
from mode.utils.queues import FlowControlQueue

from streams.offsets import ReadLedger, Verdict, committable
from streams.transport import App, EagerConsumer

TOPIC = "capture.events"
TP = TopicPartition(TOPIC, 0)
COMMITTED = 10  # the group's committed offset when the worker starts
END = 70  # records 0..69 in the partition
BATCH = 8  # records per fetch (also run with one fetch holding the whole backlog)


class ScriptedBroker:
    """Stands in for faust's aiokafka consumer thread: one partition's log,
    aiokafka's fetch position, the committed offset."""

    def __init__(self, round_trip: int, batch: int, fetch_wait: int) -> None:
        self.position = COMMITTED  # aiokafka starts an assigned partition at the commit
        self.committed = COMMITTED
        self.round_trip = round_trip  # loop turns a seek's broker round trip takes
        self.batch = batch
        self.fetch_wait = fetch_wait  # loop turns a fetch waits before it reads the log
        self.fetches = 0

    async def getmany(self, active_partitions: Any, timeout: float) -> dict[Any, list[Any]]:
        for _ in range(self.fetch_wait):  # a fetch that began before a seek may end after it
            await asyncio.sleep(0)
        self.fetches += 1
        first = self.position
        last = min(first + self.batch, END)
        self.position = last
        return {
            TP: [
                ConsumerRecord(TOPIC, 0, o, 0, 0, b"k", b"v", None, 1, 1, ())
                for o in range(first, last)
            ]
        }

    async def seek_to_committed(self) -> dict[Any, int]:
        for _ in range(self.round_trip):
            await asyncio.sleep(0)
        self.position = self.committed
        return {TP: self.committed}

    def seek(self, tp: Any, offset: int) -> None:  # aiokafka: synchronous
        self.position = offset

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return {tp: 0 for tp in tps}

    def assignment(self) -> set[Any]:
        return {TP}

    def highwater(self, tp: Any) -> int:
        return END

    def topic_partitions(self, topic: str) -> int:
        return 1


class Event:
    """What faust puts in an agent's queue: the message, for the clear hook."""

    def __init__(self, message: Any) -> None:
        self.message = message


class Run:
    """One worker start: the consumer, its agent queue, what the agent processed."""

    def __init__(
        self, consumer_class: type[Any], round_trip: int, batch: int = BATCH, fetch_wait: int = 1
    ) -> None:
        self.app = App(
            "intake-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False
        )
        self.app.gap_free_topics = frozenset({TOPIC})
        self.app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
        self.queue: FlowControlQueue[Event] = FlowControlQueue(
            flow_control=self.app.flow_control, clear_on_resume=True
        )
        self.broker = ScriptedBroker(round_trip, batch, fetch_wait)
        self.handed_over: list[int] = []
        self.processed: list[int] = []

        async def on_message(message: Any) -> None:
            await asyncio.sleep(0)  # a yield point per record: the seek may land anywhere
            self.handed_over.append(message.offset)
            self.queue.put_nowait(Event(message))

        transport = self.app.transport
        self.consumer = consumer_class(
            transport,
            callback=on_message,
            on_partitions_revoked=_noop,
            on_partitions_assigned=_noop,
        )
        self.app._consumer = self.consumer
        self.consumer._thread = self.broker
        self.consumer._commit_every = None
        self.consumer.resume_partitions({TP})  # as recovery does when it ends
        self.consumer.resume_flow()

    def commit(self) -> None:
        """What faust's commit does with the consumer's bookkeeping."""
        offset = self.consumer._new_offset(TP)
        if offset is not None and self.consumer._should_commit(TP, offset):
            self.consumer._committed_offset[TP] = offset
            self.broker.committed = offset

    async def agent(self, running: asyncio.Event) -> None:
        while True:
            await running.wait()
            event = await self.queue.get()
            self.processed.append(event.message.offset)
            self.consumer.ack(event.message)

    async def scenario(self, seek_after: int, clear_after: int, agent_early: bool) -> None:
        fetcher = _Fetcher()
        running = asyncio.Event()
        if agent_early:
            running.set()
        drain = asyncio.ensure_future(self.consumer._drain_messages(fetcher))
        agent = asyncio.ensure_future(self.agent(running))
        try:
            await _until(lambda: len(self.handed_over) >= seek_after)
            await self.consumer.perform_seek()  # recovery ended: seek to the committed offsets
            for _ in range(clear_after):
                await asyncio.sleep(0)
            self.app.flow_control.resume()  # clears the agents' queues
            running.set()
            # the worker runs on: commits now and then until nothing moves any more
            for _ in range(4000):
                await asyncio.sleep(0)
                if _ % 20 == 0:
                    self.commit()
                if self.consumer._committed_offset[TP] == END:
                    break
            self.commit()
        finally:
            fetcher._stopped.set()
            drain.cancel()
            agent.cancel()
            await asyncio.gather(drain, agent, return_exceptions=True)

    @property
    def committed(self) -> int:
        return self.broker.committed


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()


async def _noop(*args: Any) -> None:
    return None


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never met")


def run(
    consumer_class: type[Any],
    seek_after: int,
    clear_after: int,
    agent_early: bool,
    round_trip: int = 3,
    batch: int = BATCH,
    fetch_wait: int = 1,
) -> Run:
    async def main() -> Run:
        # in the loop: faust's services bind to it
        r = Run(consumer_class, round_trip, batch, fetch_wait)
        await r.scenario(seek_after, clear_after, agent_early)
        return r

    return asyncio.run(main())


@pytest.mark.parametrize("fetch_wait", [1, 6])
@pytest.mark.parametrize("batch", [BATCH, END])
@pytest.mark.parametrize("agent_early", [False, True])
@pytest.mark.parametrize("clear_after", [0, 2, 1000])
@pytest.mark.parametrize("seek_after", range(0, 2 * BATCH + 2))
def test_every_offset_below_the_commit_reached_the_agent(
    seek_after: int, clear_after: int, agent_early: bool, batch: int, fetch_wait: int
) -> None:
    # batch=END: one fetch holds the whole backlog, so nothing fetched later
    # reveals what was dropped: the consumer must seek back on its own.
    # fetch_wait=6: a fetch outlasts the seek's round trip (3 turns), so records
    # fetched after the seek arrive in a fetch that began before it.
    r = run(EagerConsumer, seek_after, clear_after, agent_early, batch=batch, fetch_wait=fetch_wait)
    assert r.committed == END, (r.committed, sorted(set(r.processed)))
    missing = set(range(COMMITTED, r.committed)) - set(r.processed)
    assert not missing


def test_stock_faust_commits_past_records_it_dropped() -> None:
    # The same scenario with faust's own consumer: some interleaving commits
    # past records that the agent never processed (or stops committing).
    outcomes = []
    for seek_after in range(0, 2 * BATCH + 2):
        r = run(aiokafka_driver.Consumer, seek_after, clear_after=0, agent_early=False)
        lost = set(range(COMMITTED, r.committed)) - set(r.processed)
        outcomes.append(bool(lost) or r.committed != END)
    assert any(outcomes)


def test_a_commit_never_skips_an_unacknowledged_offset() -> None:
    # faust: committed 100 with 101-110 acknowledged committed 111.
    acked = list(range(101, 111))
    assert committable(100, acked) == (None, [])
    assert acked == list(range(101, 111))
    acked.append(100)
    assert committable(100, acked) == (111, list(range(100, 111)))
    assert acked == []


def test_a_commit_covers_only_the_run_from_the_committed_offset() -> None:
    acked = [12, 10, 11, 15, 16, 9]
    assert committable(10, acked) == (13, [9, 10, 11, 12])
    assert acked == [15, 16]
    assert committable(None, [7, 8, 10]) == (9, [7, 8])


def test_the_consumer_commits_nothing_past_a_missing_offset() -> None:
    r = Run(EagerConsumer, round_trip=1)
    r.consumer._committed_offset[TP] = 100
    for offset in range(101, 111):
        r.consumer._acked[TP].append(offset)
        r.consumer._acked_index[TP].add(offset)
    assert r.consumer._new_offset(TP) is None
    r.consumer._acked[TP].append(100)
    r.consumer._acked_index[TP].add(100)
    assert r.consumer._new_offset(TP) == 111
    assert not r.consumer._acked_index[TP]


def test_booked_gaps_let_the_commit_pass_them() -> None:
    # offsets deleted by retention before the worker read them
    r = Run(EagerConsumer, round_trip=1)
    r.consumer._committed_offset[TP] = 100
    r.consumer.book_gap(TP, 100, 149)
    r.consumer._acked[TP].extend([150, 151])
    assert r.consumer._new_offset(TP) == 152


def test_ledger_verdicts() -> None:
    ledger = ReadLedger()
    assert ledger.verdict(TP, 42, 0) is Verdict.DELIVER  # nothing known: any offset
    ledger.delivered(TP, 42, 0)
    assert ledger.verdict(TP, 43, 0) is Verdict.DELIVER
    assert ledger.verdict(TP, 42, 0) is Verdict.SEEN
    assert ledger.verdict(TP, 45, 0) is Verdict.GAP
    fetched_before = ledger.clock
    began = ledger.begin_seek()
    fetched_during = ledger.clock
    ledger.sought(TP, 40, began)
    # the expected offset is good whenever it was fetched; above it, a fetch from
    # before the seek is stale (the seek brings the rest), a later one is a gap
    assert ledger.verdict(TP, 40, fetched_before) is Verdict.DELIVER
    assert ledger.verdict(TP, 44, fetched_before) is Verdict.STALE
    assert ledger.verdict(TP, 44, fetched_during) is Verdict.GAP
    ledger.delivered(TP, 40, fetched_before)
    assert ledger.expected(TP) == 41
    assert ledger.seeks_due() == []
    fetched_before_rewind = ledger.clock
    ledger.rewind(TP, 38)
    assert ledger.expected(TP) == 38
    assert ledger.seeks_due() == [(TP, 38)]  # the fetcher has moved on: seek back
    ledger.rewind(TP, 39)  # never forward
    assert ledger.expected(TP) == 38
    # a hand-over in flight across the rewind does not move the position, even
    # of the expected offset: the clear may have dropped it
    ledger.delivered(TP, 38, fetched_before_rewind)
    assert ledger.expected(TP) == 38
    ledger.delivered(TP, 38, ledger.clock)
    assert ledger.expected(TP) == 39
    ledger.sought(TP, 38, ledger.begin_seek())
    assert ledger.seeks_due() == []
    ledger.rewind(TP, 38)  # the expected record itself dropped: seek back to it
    assert ledger.seeks_due() == [(TP, 38)]
    ledger.forget([TP])
    assert ledger.expected(TP) is None
