"""The Faust app: topics, the device table, the route agent and the timer.

Thin shell over pure modules. One agent reads `capture.events` (keyed by
device_id) in batches; for each batch it routes (decode, dedup, consent,
redact) with `streams.router`, publishes clean events and dead letters, folds
the clean events into the per-device activity state (`streams.activity`:
sessions, minute windows, actions), publishes what closed, waits until every
output is acknowledged and only then writes one table entry per device and
lets faust ack the batch. A wall-clock timer closes what quiet devices leave
open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import faust
import mode

from backends.dlq_limit import DlqLimit, DlqLimitExceeded, DlqPolicy
from backends.kafka.consent_view import ConsentView
from backends.kafka.lag import LagProbe, observe_worker_lag
from privacy.capture_hours import CaptureHours
from privacy.content_keys import Keys, encrypt_action, encrypt_clean_event
from privacy.scope import Scope
from schemas.clock import now_micros
from schemas.codec import encode
from schemas.topics import Topic
from streams import metrics
from streams.actions import ActionConfig
from streams.activity import ActivityConfig, DeviceActivity, Outputs
from streams.changelog import DeviceTable, wait_for_changelogs
from streams.minutes import MinuteConfig
from streams.output import OutputFailed, OutputProducer
from streams.partition_gate import PartitionGate
from streams.recovery import TableManager
from streams.router import RawMessage, RouteConfig, RouteResult, route_batch
from streams.session import SessionConfig
from streams.settings import StreamSettings, WorkerSettings
from streams.stall import StallWatch, WorkerStalled
from streams.transport import App

log = logging.getLogger(__name__)

CAPTURE_EVENTS = Topic.CAPTURE_EVENTS
CAPTURE_CLEAN = Topic.CAPTURE_CLEAN
CAPTURE_DLQ = Topic.CAPTURE_DLQ
SESSIONS = Topic.ACTIVITY_SESSIONS
MINUTES = Topic.ACTIVITY_MINUTES
ACTIONS = Topic.TRAINING_ACTIONS
LATE = Topic.ACTIVITY_LATE
_STREAM_DEFAULTS = StreamSettings()


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


class _ReaderStopped(RuntimeError):
    """A background registry reader died: the worker must stop, not route blind."""


class _StateCache:
    """Live DeviceActivity objects of this worker's devices, so that a batch or a
    timer tick does not rebuild each device's state from the table's JSON.

    The table (and its changelog) stays the source of truth: every change is
    written there before the batch is acked, and the cache is dropped at every
    rebalance and again when the table's recovery completes, after which states
    are read from the recovered table."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.live: dict[bytes, DeviceActivity] = {}

    def get(self, key: bytes) -> DeviceActivity:
        state = self.live.get(key)
        if state is None:
            state = self.live[key] = DeviceActivity.from_dict(self.table.get(key))
        return state

    def clear(self) -> None:
        self.live.clear()


class _DeviceStates:
    """The device states one batch touches."""

    def __init__(self, cache: _StateCache) -> None:
        self.cache = cache
        self.loaded: dict[str, DeviceActivity] = {}

    def seen(self, device: str) -> Any:
        state = self.loaded.get(device)
        if state is None:
            state = self.loaded[device] = self.cache.get(device.encode())
        return state.seen


def withhold_acks(events: Iterable[Any]) -> None:
    """Keep the offsets of a batch that failed out of every later commit.

    faust's `take_events` acks each event of a batch when the agent leaves the
    batch, by an exception too, and a stopping consumer commits what is acked:
    the batch would be skipped after the restart although its outputs may not
    be durable. A message already marked acked is passed over by faust's ack,
    so its offset is never recorded as done, and the commit stops below it."""
    for event in events:
        event.message.acked = True


def worker_config(settings: WorkerSettings, app_id: str = "candor-streams") -> WorkerConfig:
    """The worker's tuning from the settings' `streams` section (and the orgs'
    capture hours from `privacy`). Raises InvalidCaptureHours on a malformed entry."""
    st = settings.streams
    sec = 1_000_000
    return WorkerConfig(
        app_id=app_id,
        capture_hours=tuple(CaptureHours.from_dict(h) for h in settings.privacy.capture_hours),
        batch_max=st.batch_max,
        batch_within_s=st.batch_within_s,
        timer_interval_s=st.timer_interval_s,
        stall_s=st.stall_s,
        dlq_limit=DlqLimit(max_invalid_ratio=st.dlq_max_ratio,
                           max_consecutive=st.dlq_max_consecutive),
        activity=ActivityConfig(
            session=SessionConfig(gap_micros=int(st.session_gap_s * sec),
                                  max_length_micros=int(st.session_max_s * sec),
                                  grace_micros=int(st.grace_s * sec)),
            minutes=MinuteConfig(grace_micros=int(st.grace_s * sec),
                                 quiet_micros=int(st.minute_quiet_s * sec)),
            actions=ActionConfig(quiet_micros=int(st.action_quiet_s * sec),
                                 session_gap_micros=int(st.session_gap_s * sec),
                                 session_max_length_micros=int(st.session_max_s * sec)),
        ),
    )


AppT = TypeVar("AppT", bound=faust.App)


def new_app(app_class: type[AppT], app_id: str, bootstrap: str, partitions: int,
            datadir: Path, replication_factor: int = 1) -> AppT:
    """A faust app with the stream worker's settings (intake, commits, tables);
    bench/faust_floor.py measures its intake with these very settings."""
    return app_class(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        broker_session_timeout=30,
        broker_heartbeat_interval=3,
        stream_buffer_maxsize=20_000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        producer_linger_ms=5,
        table_standby_replicas=0,
        TableManager=TableManager,
        Table=DeviceTable,  # forgets the states of revoked partitions (streams.changelog)
    )


def build_app(settings: WorkerSettings, cfg: WorkerConfig, consent: ConsentView,
              output: OutputProducer, keys: Keys) -> faust.App:
    """Declare the app. Nothing connects until the worker starts."""
    partitions = settings.kafka.partitions
    datadir = settings.home / "streams" / cfg.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = new_app(App, cfg.app_id, settings.kafka.bootstrap, partitions, datadir,
                  settings.kafka.replicas())
    t = settings.kafka.topic
    # Idempotent, non-transactional producers: every offset holds a record.
    app.gap_free_topics = frozenset({t(CAPTURE_EVENTS)})
    source = app.topic(t(CAPTURE_EVENTS), key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=partitions)
    # Keys are the device_id bytes, partitioned by the producer's (murmur2) hash
    # exactly as capture clients partition capture.events: the state of a device
    # lives in the changelog partition matching its input partition, whether it
    # was written by the agent (a batch spans many devices) or by the timer.
    # key_type=bytes is what makes faust use the raw key serializer both when
    # writing the changelog and when recovering from it (a Schema with
    # key_serializer="raw" is honoured on write only).
    devices = app.Table("devices", default=None, partitions=partitions, use_partitioner=True,
                        key_type=bytes)
    cache = _StateCache(devices)

    def _drop_cache(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        cache.clear()

    flow = PartitionGate(now_micros(), cfg.activity.session.gap_micros
                         + cfg.activity.session.grace_micros)

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Recovery fills the table after the assignment: what was cached meanwhile
        # is stale. And the partitions just assigned may hold a backlog (of a
        # worker that died, say): their devices are not quiet until it is read.
        cache.clear()
        flow.restart(now_micros())

    app.on_partitions_revoked.connect(_drop_cache)
    app.on_partitions_assigned.connect(_drop_cache)
    app.on_rebalance_complete.connect(_rebalanced)
    wait_for_changelogs(app)  # before the streams resume: the first write needs it

    hours = {h.org_id: h for h in cfg.capture_hours}
    dlq_limit = DlqPolicy(cfg.dlq_limit)  # the worker's batches span partitions: one state
    watchdog = StallWatch(cfg.stall_s, time.monotonic())
    # The agent and the timer change the same live device states, and each
    # stores them after awaiting its own outputs: one at a time, or a state
    # stored by one could hold sequence numbers of the other's batch whose
    # outputs are not acknowledged yet (dropped as duplicates after a crash).
    one_writer = asyncio.Lock()

    def consented(subject: str) -> bool:
        # A subject revoked or erased since its events were folded: what the
        # timer closes later is not published.
        policy = consent.get(subject)
        return policy is not None and Scope.ACTIVITY_METADATA in policy.scopes

    # Outputs are built here from input already decoded (and domain-checked):
    # encoding skips the domain checks, which the sinks run again on decoding.
    def publish(outputs: Outputs, device: str) -> None:
        for s in outputs.sessions:
            if consented(s["subject_id"]):
                output.send(t(SESSIONS), s["subject_id"],
                            encode("Session", s, check_domains=False))
        for m in outputs.minutes:
            m["device_id"] = device
            if consented(m["subject_id"]):
                output.send(t(MINUTES), m["subject_id"],
                            encode("MinuteAggregate", m, check_domains=False))
        for a in outputs.actions:
            if consented(a["subject_id"]):
                output.send(t(ACTIONS), a["subject_id"],
                            encode("Action", encrypt_action(a, keys), check_domains=False))
        for late in outputs.late:
            output.send(t(LATE), device, encode("LateEvent", late, check_domains=False))

    def count(outputs: Outputs) -> None:
        metrics.EVENTS_OUT.labels(t(SESSIONS)).inc(len(outputs.sessions))
        metrics.EVENTS_OUT.labels(t(MINUTES)).inc(len(outputs.minutes))
        metrics.EVENTS_OUT.labels(t(ACTIONS)).inc(len(outputs.actions))
        metrics.EVENTS_OUT.labels(t(LATE)).inc(len(outputs.late))
        metrics.LATE_EVENTS.labels("session").inc(outputs.late_count("session"))
        metrics.LATE_EVENTS.labels("minutes").inc(outputs.late_count("minutes"))
        for rule, n in outputs.redactions.items():  # typed text, redacted per typing action
            metrics.REDACTIONS.labels(rule).inc(n)

    # CrashingSupervisor: an agent that raises (DlqLimitExceeded, OutputFailed)
    # stops the worker instead of being restarted over the same batch forever.
    @app.agent(source, supervisor_strategy=mode.CrashingSupervisor)
    async def route(stream: Any) -> None:
        async for events in stream.take_events(cfg.batch_max, within=cfg.batch_within_s):
            try:
                async with one_writer:
                    result = await process(events)
            except BaseException:  # failed or cancelled before the batch was durable
                withhold_acks(events)
                cache.clear()  # states of this batch were changed but not stored
                raise
            try:
                for rejected in result.outcomes:
                    dlq_limit.observe(rejected)
            except DlqLimitExceeded as err:
                log.critical("%s", err)
                raise

    async def process(events: list[Any]) -> RouteResult:
        """Route, fold and publish one batch; returns once its outputs are
        acknowledged and its device states written to the table."""
        started = time.perf_counter()
        batch = [RawMessage(e.key, e.value, e.message.topic, e.message.partition,
                            e.message.offset) for e in events]
        now = now_micros()
        flow.saw({e.message.partition for e in events}, now)
        states = _DeviceStates(cache)
        result = route_batch(batch, now=now, consent=consent.get,
                             hours=hours.get, seen=states.seen, config=cfg.route)
        # events, not records: a DeviceBatch record holds many (one refused whole counts one)
        metrics.EVENTS_IN.labels(t(CAPTURE_EVENTS)).inc(len(result.outcomes))
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
        for event in result.clean:
            output.send(clean_topic, event["device_id"],
                        encode("CaptureEvent", encrypt_clean_event(event, keys),
                               check_domains=False))
            per_device[event["device_id"]].append(event)
        metrics.EVENTS_OUT.labels(clean_topic).inc(len(result.clean))
        folded = Outputs()
        for device, evs in per_device.items():
            out = states.loaded[device].fold(evs, now, cfg.activity)
            publish(out, device)
            folded.extend(out)
        count(folded)
        await output.flush()
        for device, state in states.loaded.items():
            devices[device.encode()] = state.to_dict()
        metrics.BATCH_SIZE.observe(len(result.outcomes))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        watchdog.progressed(time.monotonic())
        return result

    lag_probe = LagProbe.create(settings.kafka.client_config(), cfg.app_id,
                                [t(CAPTURE_EVENTS)])

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        try:
            assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
            lags = await observe_worker_lag(lag_probe, assigned)
        except Exception as err:  # a lag gauge must never stop the worker
            log.warning("consumer lag not measured: %s", err)
            return
        stalled = watchdog.stalled(lags, time.monotonic(), app.rebalancing)
        if stalled:
            log.critical("%s", stalled)
            await app.crash(WorkerStalled(stalled))

    @app.timer(interval=cfg.timer_interval_s)  # type: ignore[untyped-decorator]
    async def close_quiet_devices() -> None:
        # An exception would end faust's timer task silently: handle every one here.
        try:
            async with one_writer:
                await _close_quiet_devices()
        except OutputFailed as err:
            # Nothing was stored: forget the mutated states, so that the next tick
            # reloads them from the table and closes (and publishes) the same again.
            cache.clear()
            log.warning("timer outputs not acknowledged, retrying next tick: %s", err)
        except _ReaderStopped as err:
            log.critical("%s", err)
            await app.crash(err)
        except Exception:
            cache.clear()
            log.exception("closing quiet devices failed; retrying next tick")

    async def _close_quiet_devices() -> None:
        now = now_micros()
        metrics.CONSENT_SUBJECTS.set(len(consent))
        if not consent.alive:
            raise _ReaderStopped("consent registry reader stopped; refusing to route without it")
        if not getattr(keys, "alive", True):
            raise _ReaderStopped("key store reader stopped; refusing to route without it")
        if app.rebalancing:
            # The table is being recovered: a state read now may be partial.
            return
        closing = flow.may_close(now)
        key_partition = getattr(devices.data, "_key_partition", {})  # streams.changelog
        changed: dict[bytes, DeviceActivity] = {}
        closed = Outputs()
        open_sessions = 0
        for device in list(devices.keys()):
            state = cache.get(device)
            if closing and flow.may_close_in(key_partition.get(device), now):
                out = state.tick(now, cfg.activity)
                if out.sessions or out.minutes or out.actions:
                    changed[device] = state
                    publish(out, device.decode())
                    closed.extend(out)
            open_sessions += state.has_open_session
        # Set on every tick: the gauge must not wait for the gate (a gap after start).
        metrics.OPEN_SESSIONS.set(open_sessions)
        count(closed)
        if changed:
            log.info("timer: %d quiet devices closed outputs; %d sessions still open",
                     len(changed), open_sessions)
        if changed:
            await output.flush()
            for device, state in changed.items():
                devices[device] = state.to_dict()  # device: the table's bytes key
        await asyncio.sleep(0)

    return app
