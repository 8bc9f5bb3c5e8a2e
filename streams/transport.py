"""The worker's Faust app class: faust's Kafka transport with a cheaper intake.

faust's consumer hands every fetched record to the app with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: the
callback (which puts the record into the agents' stream buffers) must stay
interruptible when a rebalance suspends the flow while a full buffer blocks
it. `Service.wait_first` makes four tasks per call for that, per record, which
on this project's 2-core machines took more CPU than everything else of
receiving a record (bench/faust_floor.py measures an agent that only
receives: about 6.5k events/s with it, about 12k without).

`EagerConsumer.wait_first` runs the first coroutine at once instead: when it
finishes without waiting (the buffer had room: nearly always) that is the
answer, and nothing was scheduled. When it has to wait, what is left of it
is handed to faust's `wait_first` as before, so a suspended flow interrupts
it exactly as it would have.

`EagerConsumer`'s consumer thread (`IntakeThread`) lets the broker hold a
fetch that finds no new record for `FETCH_MAX_WAIT_MS` instead of faust's
1.5 s: with 1.5 s the worker's intake stalled for 1-1.5 s about every 2 s at
5,000 events/s (see `limit_fetch_wait`).

`EagerConsumer` also hands the records of gap-free topics (``App.gap_free_topics``:
the worker's ``capture.events``) to the agent strictly in offset order through a
`streams.offsets.ReadLedger`, and commits only runs of acknowledged offsets:
faust's own bookkeeping loses records after table recovery and lets a commit
skip one offset (see `streams.offsets`). Records of other topics (table
changelogs) take faust's path unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Coroutine, Generator, Mapping
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message, TransportT
from mode import Service, ServiceT
from mode.services import WaitArgT, WaitResults
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from streams import metrics
from streams.offsets import ReadLedger, Verdict, committable

log = logging.getLogger(__name__)


class Resumed(Awaitable[Any]):
    """Awaitable rest of a coroutine that was started by hand and stopped at
    `pending` (the future it waits on): awaiting it drives the coroutine on
    from there, passing cancellation and errors into it."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, None, Any]:
        pending = self.pending
        while True:
            thrown: BaseException | None = None
            try:
                yield pending
            except BaseException as exc:  # thrown in by the awaiting task: pass it on
                thrown = exc
            try:
                pending = self.coro.send(None) if thrown is None else self.coro.throw(thrown)
            except StopIteration as done:
                return done.value


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run `coro` until it first waits: `(True, result)` when it finished on
    the way, else `(False, Resumed(...))` to await for the rest. Exceptions
    propagate as from `await coro`."""
    try:
        pending = coro.send(None)
    except StopIteration as done:
        return True, done.value
    return False, Resumed(coro, pending)


#: How long (ms) the broker may hold the worker's fetch when it has no new
#: record for it; faust asks for 1,500.
FETCH_MAX_WAIT_MS = 100


def limit_fetch_wait(consumer: Any, max_wait_ms: int) -> None:
    """Make an aiokafka consumer that has not started yet ask the broker to
    hold its fetches at most `max_wait_ms` (its ``fetch_max_wait_ms``, which
    faust's consumer thread fixes at 1,500 without a setting to change it).

    Why: aiokafka keeps one fetch per broker in flight. Measured with the
    worker's log at 5,000 events/s (bench/e2e.py, one run each): with 1,500
    its `getmany` came back empty after a full second about every 2 s, every
    capture.events partition at the last highwater aiokafka had seen and its
    last fetch a second old, while records kept arriving; the agent then got
    2 s of records at once (batches of 10,000 events), and capture ->
    capture.clean took p50/p99 1.35/2.34 s. With 100 the empty waits and the
    bursts were gone: 0.51/1.30 s. An idle worker asks 10 times a second
    instead of 2/3 of a time; each ask is one small request.

    Raises RuntimeError when aiokafka no longer keeps the setting where this
    sets it (read when the consumer starts), rather than silently not
    applying it."""
    if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
        raise RuntimeError(f"{type(consumer).__name__} has no _fetch_max_wait_ms to limit")
    consumer._fetch_max_wait_ms = max_wait_ms


class IntakeThread(aiokafka_driver.AIOKafkaConsumerThread):
    """faust's aiokafka consumer thread with the fetch wait `FETCH_MAX_WAIT_MS`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        limit_fetch_wait(consumer, FETCH_MAX_WAIT_MS)
        return consumer


class EagerConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer whose per-record hand-over runs eagerly."""

    def _new_consumer_thread(self) -> IntakeThread:
        return IntakeThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        first = coros[0] if len(coros) == 2 else None
        if not asyncio.iscoroutine(first) or self.should_stop or self.suspend_flow.is_set():
            # a suspended flow (rebalance) must win over the hand-over: faust's way
            return await super().wait_first(*coros, timeout=timeout)
        finished, value = start_eagerly(first)
        if finished:
            other = coros[1]
            if asyncio.iscoroutine(other):
                other.close()  # never started: nothing to cancel
            return WaitResults([first], [value], False)
        return await super().wait_first(value, coros[1], timeout=timeout)

    # --- in-order intake of gap-free topics ------------------------------------

    @cached_property
    def ledger(self) -> ReadLedger:
        return ReadLedger()

    def _gap_free(self, topic: str) -> bool:
        return topic in getattr(self.app, "gap_free_topics", ())

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - needs a broker
        """faust's fetch loop, with the records of gap-free topics checked
        against the ledger before they are handed over (`_take_in_order`)."""
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.seek_where_due()
                await self.drain_one_fetch()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    fetched_at = 0  # ledger clock when the records being handed over were fetched

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        self.fetched_at = self.ledger.clock  # just before the broker is asked
        return await super()._getmany(active_partitions, timeout)

    async def drain_one_fetch(self) -> None:
        """Hand over the records of one `getmany` call, yielding to the loop
        every 100 records as faust does."""
        records = self.getmany(timeout=1.0)
        await self.sleep(0)
        if self.should_stop:
            return
        since_yield = 0
        async for tp, message in records:
            since_yield += 1
            if since_yield > 100:
                await asyncio.sleep(0)
                since_yield = 0
            if self._gap_free(tp.topic):
                await self._take_in_order(tp, message, self.fetched_at)
            else:
                await self._take_as_faust(tp, message)

    async def seek_where_due(self) -> None:
        """Seek back the partitions whose handed-over records a queue clear
        dropped: nothing else may bring them again (the backlog may be read)."""
        for tp, offset in self.ledger.seeks_due():
            if tp in self.assignment():
                log.info("%s: records from %d were dropped unprocessed; reading again", tp, offset)
                await self.seek(tp, offset)

    async def _take_in_order(self, tp: TP, message: Message, fetched_at: int) -> None:
        ledger = self.ledger
        verdict = ledger.verdict(tp, message.offset, fetched_at)
        if verdict is Verdict.GAP:
            verdict = await self._close_gap(tp, message.offset, fetched_at)
        if verdict is not Verdict.DELIVER:
            return
        await self._maybe_commit()
        if await self._hand_over(message):
            ledger.delivered(tp, message.offset, fetched_at)
            self._read_offset[tp] = message.offset

    async def _close_gap(self, tp: TP, offset: int, fetched_at: int) -> Verdict:
        """A record above the expected offset arrived: records between went
        missing. Seek back to the first of them, unless retention deleted them
        (then book them as a gap, with an ERROR, and go on). Returns the
        verdict for the record in hand."""
        want = self.ledger.expected(tp)
        assert want is not None  # a GAP verdict needs an expected offset
        try:
            earliest = (await self.earliest_offsets(tp)).get(tp)
        except Exception as err:  # the seek back is right in every case but retention
            log.warning("%s: earliest offset not known (%s); reading again from %d", tp, err, want)
            earliest = None
        if earliest is not None and earliest > want:
            log.error(
                "%s: offsets %d-%d were deleted by retention before this worker read "
                "them; going on from %d",
                tp,
                want,
                earliest - 1,
                earliest,
            )
            metrics.OFFSETS_LOST.labels(tp.topic).inc(earliest - want)
            self.book_gap(tp, want, earliest - 1)
            self.ledger.skip_to(tp, earliest)
            verdict = self.ledger.verdict(tp, offset, fetched_at)
            if verdict is not Verdict.GAP:
                return verdict
            want = earliest
        log.warning(
            "%s: offset %d fetched while %d was expected (fetched before a seek, or "
            "dropped from a cleared queue); reading again from %d",
            tp,
            offset,
            want,
            want,
        )
        metrics.OFFSETS_REREAD.labels(tp.topic).inc()
        await self.seek(tp, want)
        return Verdict.STALE

    async def _hand_over(self, message: Message) -> bool:
        """Give `message` to the agents' streams; False when a suspended flow
        (a rebalance) or a stop won the race and the record was not taken."""
        suspended = self.suspend_flow.wait()
        results = await self.wait_first(self.callback(message), suspended)
        return not results.stopped and any(w is not suspended for w in results.done)

    async def _take_as_faust(self, tp: TP, message: Message) -> None:
        offset = message.offset
        r_offset = self._read_offset[tp]
        if r_offset is not None and offset < r_offset:
            return
        if r_offset and offset - r_offset > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, r_offset + 1, offset)
        await self._maybe_commit()
        await self.wait_first(self.callback(message), self.suspend_flow.wait())
        self._read_offset[tp] = offset

    async def _maybe_commit(self) -> None:
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    def book_gap(self, tp: TP, first: int, last: int) -> None:
        """Offsets `first`..`last` hold no record to wait for: commits may pass them."""
        self._gap[tp].addi(first, last + 1)
        self._gap[tp].merge_overlaps()

    async def perform_seek(self) -> None:
        """faust's seek of every assigned partition to its committed offset,
        booked in the ledger: records fetched before it are stale."""
        began = self.ledger.begin_seek()
        sought = await self.seek_to_committed()
        self._read_offset.update(
            {
                tp: offset if offset is not None and offset >= 0 else None
                for tp, offset in sought.items()
            }
        )
        self._committed_offset.update(
            {tp: offset or None for tp, offset in sought.items() if offset is not None}
        )
        for tp, offset in sought.items():
            if not self._gap_free(tp.topic):
                continue
            if offset and offset > 0:
                self.ledger.sought(tp, offset, began)
            else:
                await self._seek_to_start(tp)

    async def _seek_to_start(self, tp: TP) -> None:
        """Read a partition that has no committed offset from its first record.

        aiokafka seeks only to a committed offset above 0 and otherwise leaves
        the position where it is. faust drops the records a fetch brought while
        the flow was suspended (a rebalance) and counts on this seek to bring
        them again: without a committed offset nothing did, the position stayed
        past them and the worker took nothing more from the partition (seen
        after a worker was killed before its first commit: "stalled" with every
        record fetched and none processed)."""
        try:
            start = (await self.earliest_offsets(tp)).get(tp) or 0
        except Exception as err:  # from 0: the broker resets to its first record
            log.warning("%s: first offset not known (%s); reading from 0", tp, err)
            start = 0
        await self.seek(tp, start)

    async def seek(self, partition: TP, offset: int) -> None:
        began = self.ledger.begin_seek()
        await super().seek(partition, offset)
        if self._gap_free(partition.topic):
            self.ledger.sought(partition, offset, began)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.ledger.forget(revoked)
        await super().on_partitions_revoked(revoked)

    def describe_intake(self) -> str:
        """What the intake of each assigned partition looks like now, for the log
        of a stalled worker: faust's view (active, paused, buffer-full, the flow),
        aiokafka's (its position, pause and last fetch, in the consumer thread's
        subscription state) and the ledger's expected offset. Read without
        locks, for a human; never raises."""
        try:
            assigned = sorted(self.assignment())
            parts = [
                f"flow {'active' if self.flow_active else 'suspended'}",
                f"unacked {len(self._unacked_messages)}",
            ]
            state = None
            try:
                consumer = self._thread._ensure_consumer()
                state = consumer._fetcher._subscriptions.subscription.assignment
            except Exception as err:
                parts.append(f"aiokafka state unknown ({type(err).__name__})")
            others: dict[str, int] = {}
            for tp in assigned:
                if not self._gap_free(tp.topic):  # changelogs: counted, not described
                    others[tp.topic] = others.get(tp.topic, 0) + 1
                    continue
                faust_view = (
                    "active" if tp in (self._active_partitions or ()) else "inactive",
                    "paused" if tp in self._paused_partitions else "",
                    "buffer-full" if tp in self._buffered_partitions else "",
                )
                line = (
                    f"{tp.topic}[{tp.partition}]: {' '.join(v for v in faust_view if v)}, "
                    f"expected {self.ledger.expected(tp)}"
                )
                if state is not None:
                    line += ", aiokafka " + _aiokafka_view(state, tp)
                parts.append(line)
            parts += [f"{topic}: {n} partitions" for topic, n in sorted(others.items())]
            return "; ".join(parts)
        except Exception as err:  # a diagnostic must never stop the stop
            return f"intake not described ({type(err).__name__}: {err})"

    def rewind(self, dropped: Mapping[TP, int]) -> None:
        """Records handed over from `dropped` (partition -> lowest offset) were
        cleared from the agents' queues unprocessed: read them again."""
        for tp, offset in dropped.items():
            if self._gap_free(tp.topic):
                self.ledger.rewind(tp, offset)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for `tp`: booked gaps count as done, then only
        a run of acknowledged offsets from the committed one (`committable`)."""
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap.get(tp)
        if gaps:
            top = max(acked)
            covered = [o for iv in gaps.overlap(0, top + 1) for o in range(iv.begin, iv.end)]
            if covered:
                acked[:] = sorted(set(acked).union(covered))
                gaps.chop(0, max(covered) + 1)
        offset, done = committable(self._committed_offset[tp], acked)
        self._acked_index[tp].difference_update(done)
        return offset


def _aiokafka_view(assignment: Any, tp: TP) -> str:
    from aiokafka.structs import TopicPartition

    tps = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    if tps is None:
        return "not assigned"
    position = tps._position  # None while awaiting a reset (a seek to the committed offset)
    polled = "never" if tps.timestamp is None else f"{time.time() - tps.timestamp / 1000:.0f} s ago"
    return (
        f"position {position}, {'paused' if tps.paused else 'fetching'}, "
        f"highwater {tps.highwater}, last fetch {polled}"
    )


class RewindingFlowControl(FlowControlEvent):
    """faust's flow control, telling the consumer which handed-over records a
    clear of the agents' queues dropped (faust clears them at every resume)."""

    def __init__(self, *, on_dropped: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_dropped = on_dropped

    def clear(self) -> None:
        lowest: dict[Any, int] = {}
        for queue in self._queues:
            for item in list(queue._queue):  # type: ignore[attr-defined]
                message = getattr(item, "message", None)
                if message is not None and message.offset < lowest.get(message.tp, math.inf):
                    lowest[message.tp] = message.offset
        super().clear()
        if lowest:
            self.on_dropped(lowest)


class EagerTransport(aiokafka_driver.Transport):
    Consumer = EagerConsumer


class App(faust.App):
    """faust.App on `EagerTransport` (same settings, same broker URLs).

    `gap_free_topics` names the input topics whose every offset holds a record
    (idempotent, non-transactional producers, delete cleanup): their records
    reach the agents in offset order and their commits never skip one."""

    gap_free_topics: frozenset[str] = frozenset()

    def _new_transport(self) -> TransportT:
        return EagerTransport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return RewindingFlowControl(loop=self.loop, on_dropped=self._rewind)

    def _rewind(self, dropped: Mapping[TP, int]) -> None:
        consumer = self._consumer
        if isinstance(consumer, EagerConsumer):
            consumer.rewind(dropped)
