"""The stream worker's batch processor: what the faust agent and timer drive.

`BatchProcessor.submit` takes one batch of raw `capture.events` records (in
partition order) and routes them (`streams.router`: decode, dedup, consent,
redaction; a DeviceBatch meeting the conditions at once, else event by
event), publishes the clean events (one `CleanBatch` per input record, its
content sealed with one AEAD call: `privacy.content_keys.seal_clean_batch`) and the
dead letters (one per refused event or record), folds the clean
events into each device's activity state (`streams.activity`: sessions,
minute windows, actions), publishes what closed and snapshots the states it
changed. Then it returns, and the batch commits in the background: once
every output of the batch is acknowledged, one table entry per device is
written from the snapshot and the batch's ``on_durable`` runs (the agent acks
its offsets there). So batch N + 1 is routed while batch N's outputs are in
flight; at most one batch commits at a time, and batch N + 1 starts its commit
only after batch N's succeeded. `process` is `submit` and waiting for the
commit. `tick` is the wall-clock timer's work: close what quiet devices left
open (after the batch in flight has committed).

A commit that fails (outputs not acknowledged) stores nothing, runs no
``on_durable``, drops the live states (they hold that batch's and maybe the
next one's changes) and is reported to ``on_failure`` (the worker crashes:
its offsets were never acked, so a restart reads the batch again); the next
`submit` or `drain` raises it too.

Everything it talks to is injected, so that it runs against fakes in a unit
test the way Arroyo tests a processing strategy against a mock next step:

- ``output``: `Output` (``send`` a record, ``checkpoint`` the records sent so
  far and await their acknowledgement, ``flush`` everything);
- ``table``: the device table (faust's `Table`, or a dict), device_id bytes
  -> `streams.device_state.encode_state` bytes; the table and its changelog are the source
  of truth, the processor keeps live states in a cache it drops on failure
  and on every rebalance (`invalidate`);
- ``consent``: `ConsentSource` (the registry view);
- ``keys``: `privacy.content_keys.Keys` (the subjects' data keys);
- ``clock``: wall-clock microseconds.

It imports nothing from faust; faust's acks, supervisor and signals stay in
`streams.app`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from backends.dlq_limit import DlqLimit, DlqLimitExceeded, DlqPolicy
from privacy.capture_hours import CaptureHours
from privacy.consent import ConsentPolicy
from privacy.content_keys import Keys, encrypt_action, seal_clean_batch
from privacy.scope import Scope
from schemas.codec import encode
from schemas.topics import Topic
from streams import metrics
from streams.activity import ActivityConfig, DeviceActivity, Outputs
from streams.dedup import DeviceSeen
from streams.output import OutputFailed
from streams.partition_gate import PartitionGate
from streams.router import RawMessage, RouteConfig, RouteResult, route_batch
from streams.settings import StreamSettings
from streams.stall import StallWatch
from streams.state_cache import StateCache

log = logging.getLogger(__name__)

CAPTURE_EVENTS = Topic.CAPTURE_EVENTS
CAPTURE_CLEAN = Topic.CAPTURE_CLEAN
CAPTURE_DLQ = Topic.CAPTURE_DLQ
SESSIONS = Topic.ACTIVITY_SESSIONS
MINUTES = Topic.ACTIVITY_MINUTES
ACTIONS = Topic.TRAINING_ACTIONS
LATE = Topic.ACTIVITY_LATE
_STREAM_DEFAULTS = StreamSettings()

CLEAN_BATCH = "CleanBatch"

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class WorkerConfig:
    """Knobs of one stream worker (defaults: those of `StreamSettings`)."""

    app_id: str = "candor-streams"
    batch_max: int = _STREAM_DEFAULTS.batch_max
    batch_within_s: float = _STREAM_DEFAULTS.batch_within_s
    timer_interval_s: float = _STREAM_DEFAULTS.timer_interval_s
    stall_s: float = _STREAM_DEFAULTS.stall_s
    dlq_limit: DlqLimit | None = None
    route: RouteConfig = field(default_factory=RouteConfig)
    activity: ActivityConfig = field(default_factory=ActivityConfig)
    capture_hours: tuple[CaptureHours, ...] = ()


class Output(Protocol):
    """Where the processor's records go (`streams.output.OutputProducer`)."""

    def send(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record."""
        ...

    def checkpoint(self) -> Any:
        """Close the records sent so far into one delivery, for `delivered`."""
        ...

    async def delivered(self, delivery: Any, timeout: float = 60.0) -> None:
        """Return once every record of ``delivery`` is acknowledged; raise
        `OutputFailed` if not."""
        ...

    async def flush(self, timeout: float = 60.0) -> None:
        """Return once everything queued is acknowledged; raise `OutputFailed` if not."""
        ...


class ConsentSource(Protocol):
    """The consent registry as the processor reads it
    (`backends.kafka.consent_view.ConsentView`)."""

    def get(self, subject_id: str) -> ConsentPolicy | None:
        """The subject's current policy, or None."""
        ...

    def __len__(self) -> int: ...

    @property
    def alive(self) -> bool:
        """Whether the registry is still being kept up to date."""
        ...


def _nothing() -> None:
    pass


class ReaderStopped(RuntimeError):
    """A background registry reader died: the worker must stop, not route blind."""


class _DeviceStates:
    """The device states one batch touches."""

    def __init__(self, cache: StateCache) -> None:
        self.cache = cache
        self.loaded: dict[str, DeviceActivity] = {}

    def seen(self, device: str) -> DeviceSeen:
        state = self.loaded.get(device)
        if state is None:
            state = self.loaded[device] = self.cache.get(device.encode())
        return state.seen


class BatchProcessor:
    """Route, fold and publish batches of one worker; close quiet devices.

    ``topic`` maps a logical topic name (`CAPTURE_CLEAN`, ...) to the one
    used (the settings' prefix); ``on_failure`` hears of a background commit
    that failed. The agent and the timer change the same live device states,
    and each stores them after awaiting its own outputs: they run one at a
    time (an asyncio lock; the timer also waits for the batch in flight), or a
    state stored by one could hold sequence numbers of the other's batch whose
    outputs are not acknowledged yet (dropped as duplicates after a crash), or
    an older snapshot could be stored over a newer state."""

    def __init__(
        self,
        cfg: WorkerConfig,
        *,
        output: Output,
        table: MutableMapping[bytes, Any],
        consent: ConsentSource,
        keys: Keys,
        clock: Callable[[], int],
        topic: Callable[[str], str] = lambda name: name,
        monotonic: Callable[[], float] = time.monotonic,
        on_failure: Callable[[BaseException], None] = lambda err: None,
    ) -> None:
        self.cfg = cfg
        self.output = output
        self.table = table
        self.consent = consent
        self.keys = keys
        self.clock = clock
        self.topic = topic
        self.monotonic = monotonic
        self.cache = StateCache(table, cfg.activity)
        self.hours = {h.org_id: h for h in cfg.capture_hours}
        self.dlq_limit = DlqPolicy(cfg.dlq_limit)  # batches span partitions: one state
        self.watchdog = StallWatch(cfg.stall_s, monotonic())
        self.flow = PartitionGate(
            clock(), cfg.activity.session.gap_micros + cfg.activity.session.grace_micros
        )
        self.one_writer = asyncio.Lock()
        self.on_failure = on_failure
        self._inflight: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the live states (partitions revoked or assigned: the table is
        about to change under them)."""
        self.cache.clear()

    def rebalanced(self) -> None:
        """A rebalance completed: recovery filled the table after the assignment,
        so what was cached meanwhile is stale; and the partitions just assigned may
        hold a backlog (of a worker that died, say): their devices are not quiet
        until it is read."""
        self.cache.clear()
        self.flow.restart(self.clock())

    # -- the agent's batch -----------------------------------------------------

    async def process(self, batch: Sequence[RawMessage]) -> RouteResult:
        """Process one batch; returns once its outputs are acknowledged and its
        device states written to the table (`submit`, then `drain`).

        Raises `OutputFailed` (outputs not acknowledged) or whatever the table
        raises; then nothing of the batch is stored and the live states are
        dropped, so a retry starts from the table."""
        result = await self.submit(batch)
        await self.drain()
        return result

    async def submit(
        self,
        batch: Sequence[RawMessage],
        on_durable: Callable[[], None] = _nothing,
        on_lost: Callable[[], None] = _nothing,
    ) -> RouteResult:
        """Route and publish one batch, wait for the previous batch's commit, and
        start this one's in the background; returns the routing result.

        ``on_durable`` runs once the batch's outputs are acknowledged and its
        states written to the table; ``on_lost`` instead if that fails or is
        cancelled. Raises what the previous commit failed with, or what routing
        raised; then nothing of this batch is stored (and ``on_lost`` is not
        called: the caller has the batch) and the live states are dropped."""
        async with self.one_writer:
            try:
                routed = self._route(batch)
                await self._settle()  # the previous batch's states are stored first
            except BaseException:  # failed or cancelled before the batch was durable
                self.cache.clear()  # states of this batch were changed but not stored
                raise
            result, states, delivery = routed
            task = asyncio.ensure_future(self._commit(states, delivery, on_durable))
            task.add_done_callback(functools.partial(self._committed, on_lost))
            self._inflight = task
        return result

    async def drain(self) -> None:
        """Wait for the batch in flight to commit; raises what its commit failed with."""
        async with self.one_writer:
            await self._settle()

    async def _settle(self) -> None:
        await self._wait_inflight()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    async def _wait_inflight(self) -> None:
        inflight = self._inflight
        if inflight is not None:
            # never raises the commit's error (`_committed` records it); a cancelled
            # waiter leaves the commit running and still in flight
            await asyncio.wait({inflight})
            self._inflight = None

    async def _commit(
        self, states: Mapping[bytes, Any], delivery: Any, on_durable: Callable[[], None]
    ) -> None:
        await self.output.delivered(delivery)
        for key, entry in states.items():
            self.cache.commit(key, entry)
        on_durable()
        self.watchdog.progressed(self.monotonic())

    def _committed(self, on_lost: Callable[[], None], task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            return
        # Nothing of the batch was stored and its offsets stay unacked; the live
        # states hold its changes (and perhaps the next batch's): forget them.
        self.cache.clear()
        on_lost()
        if task.cancelled():  # the worker is stopping: a restart reads the batch again
            self._failed = asyncio.CancelledError("a batch commit was cancelled")
            return
        err = task.exception()
        assert err is not None
        self._failed = err
        log.critical("a batch's outputs were not acknowledged; its offsets stay unacked: %s", err)
        self.on_failure(err)

    def observe_rejections(self, result: RouteResult) -> None:
        """Feed a stored batch's outcomes to the dead-letter limit; raises
        `DlqLimitExceeded` (logged critical) when too many inputs were rejected."""
        try:
            for rejected in result.outcomes:
                self.dlq_limit.observe(rejected)
        except DlqLimitExceeded as err:
            log.critical("%s", err)
            raise

    def _route(self, batch: Sequence[RawMessage]) -> tuple[RouteResult, dict[bytes, Any], Any]:
        """Route, publish and fold one batch: its result, the snapshot of the
        states it changed (table key -> stored form) and its outputs' delivery."""
        started = time.perf_counter()
        t = self.topic
        output = self.output
        now = self.clock()
        self.flow.saw({m.partition for m in batch}, now)
        states = _DeviceStates(self.cache)
        result = route_batch(
            batch,
            now=now,
            consent=self.consent.get,
            hours=self.hours.get,
            seen=states.seen,
            config=self.cfg.route,
        )
        # events, not records: a DeviceBatch record holds many (one refused whole counts one)
        metrics.EVENTS_IN.labels(t(CAPTURE_EVENTS)).inc(len(result.outcomes))
        metrics.RECORDS_ROUTED.labels("batch").inc(result.fast)
        metrics.RECORDS_ROUTED.labels("event").inc(result.records - result.fast)
        for dead in result.dead:
            output.send(t(CAPTURE_DLQ), dead.key, dead.value, dead.headers())
            metrics.DEAD_LETTERS.labels(dead.reason).inc()
        for reason, n in result.drops.items():
            metrics.DROPS.labels(reason).inc(n)
        for device, n in result.seq_regressions.items():
            metrics.SEQ_REGRESSIONS.labels(device).inc(n)
        for rule, n in result.redactions.items():
            metrics.REDACTIONS.labels(rule).inc(n)
        per_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
        clean_topic = t(CAPTURE_CLEAN)
        for group in result.groups:  # one CleanBatch per input record
            device = group.events[0]["device_id"]
            output.send(
                clean_topic,
                device,
                encode(
                    CLEAN_BATCH,
                    seal_clean_batch(group.batch_id, group.events, self.keys),
                    check_domains=False,
                ),
            )
            per_device[device] += group.events
        metrics.EVENTS_OUT.labels(clean_topic).inc(len(result.clean))
        folded = Outputs()
        for device, evs in per_device.items():
            out = states.loaded[device].fold(evs, now, self.cfg.activity)
            self._publish(out, device)
            folded.extend(out)
        self._count(folded)
        snapshot = self.cache.snapshot(states.loaded)
        metrics.BATCH_SIZE.observe(len(result.outcomes))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return result, snapshot, output.checkpoint()

    # -- the timer ---------------------------------------------------------------

    async def tick(self, rebalancing: bool) -> None:
        """Close what quiet devices left open (when `TimerGate` allows), publish it,
        and store the states it changed once the outputs are acknowledged.

        Handles its own failures (an exception would end faust's timer task
        silently): outputs not acknowledged or any other error drop the live
        states, so the next tick reloads them from the table and closes (and
        publishes) the same again. Raises `ReaderStopped` only, when the consent
        registry or the key store reader died."""
        try:
            async with self.one_writer:
                await self._wait_inflight()  # the batch in flight stores its states first
                if self._failed is not None:
                    # Its failure was reported (the worker stops) and stays for the
                    # agent's next `submit`; the table may lack that batch's states.
                    log.warning("timer skipped: the batch in flight was not stored")
                    return
                await self._tick(rebalancing)
        except ReaderStopped:
            raise
        except OutputFailed as err:
            # Nothing was stored: forget the mutated states, so that the next tick
            # reloads them from the table and closes (and publishes) the same again.
            self.cache.clear()
            log.warning("timer outputs not acknowledged, retrying next tick: %s", err)
        except Exception:
            self.cache.clear()
            log.exception("closing quiet devices failed; retrying next tick")

    async def _tick(self, rebalancing: bool) -> None:
        now = self.clock()
        metrics.CONSENT_SUBJECTS.set(len(self.consent))
        if not self.consent.alive:
            raise ReaderStopped("consent registry reader stopped; refusing to route without it")
        if not getattr(self.keys, "alive", True):
            raise ReaderStopped("key store reader stopped; refusing to route without it")
        if rebalancing:
            # The table is being recovered: a state read now may be partial.
            return
        closing = self.flow.may_close(now)
        # each device's changelog partition (streams.changelog.DeviceTable records it)
        key_partition = getattr(getattr(self.table, "data", None), "_key_partition", {})
        changed: dict[bytes, DeviceActivity] = {}
        closed = Outputs()
        open_sessions = 0
        for device in list(self.table.keys()):
            state = None  # decoded only when due (streams.state_cache)
            if (
                closing
                and self.flow.may_close_in(key_partition.get(device), now)
                and self.cache.may_tick(device, now)
            ):
                state = self.cache.get(device)
                out = state.tick(now, self.cfg.activity)
                if out.sessions or out.minutes or out.actions:
                    changed[device] = state
                    self._publish(out, device.decode())
                    closed.extend(out)
            has_open = (
                self.cache.has_open_session(device) if state is None else state.has_open_session
            )
            open_sessions += has_open
        # Set on every tick: the gauge must not wait for the gate (a gap after start).
        metrics.OPEN_SESSIONS.set(open_sessions)
        self._count(closed)
        if changed:
            log.info(
                "timer: %d quiet devices closed outputs; %d sessions still open",
                len(changed),
                open_sessions,
            )
            await self.output.flush()
            for device, state in changed.items():
                self.cache.store(device, state)  # device: the table's bytes key
        await asyncio.sleep(0)

    # -- outputs -----------------------------------------------------------------

    def _consented(self, subject: str) -> bool:
        # A subject revoked or erased since its events were folded: what the
        # timer closes later is not published.
        policy = self.consent.get(subject)
        return policy is not None and Scope.ACTIVITY_METADATA in policy.scopes

    def _publish(self, outputs: Outputs, device: str) -> None:
        # Outputs are built from input already decoded (and domain-checked):
        # encoding skips the domain checks, which the sinks run again on decoding.
        t, send, keys = self.topic, self.output.send, self.keys
        for s in outputs.sessions:
            if self._consented(s["subject_id"]):
                send(t(SESSIONS), s["subject_id"], encode("Session", s, check_domains=False))
        for m in outputs.minutes:
            m["device_id"] = device
            if self._consented(m["subject_id"]):
                send(t(MINUTES), m["subject_id"], encode("MinuteAggregate", m, check_domains=False))
        for a in outputs.actions:
            if self._consented(a["subject_id"]):
                send(
                    t(ACTIONS),
                    a["subject_id"],
                    encode("Action", encrypt_action(a, keys), check_domains=False),
                )
        for late in outputs.late:
            send(t(LATE), device, encode("LateEvent", late, check_domains=False))

    def _count(self, outputs: Outputs) -> None:
        t = self.topic
        metrics.EVENTS_OUT.labels(t(SESSIONS)).inc(len(outputs.sessions))
        metrics.EVENTS_OUT.labels(t(MINUTES)).inc(len(outputs.minutes))
        metrics.EVENTS_OUT.labels(t(ACTIONS)).inc(len(outputs.actions))
        metrics.EVENTS_OUT.labels(t(LATE)).inc(len(outputs.late))
        metrics.LATE_EVENTS.labels("session").inc(outputs.late_count("session"))
        metrics.LATE_EVENTS.labels("minutes").inc(outputs.late_count("minutes"))
        for rule, n in outputs.redactions.items():  # typed text, redacted per typing action
            metrics.REDACTIONS.labels(rule).inc(n)
