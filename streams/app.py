"""The Faust app: topics, the device table, the route agent and the timers.

Declarations only. One agent reads `capture.events` (keyed by device_id) in
batches and hands each to `streams.processor.BatchProcessor`, which routes,
publishes and folds it, then commits it in the background while the agent
takes the next batch: the batch's offsets are acked only once its outputs are
acknowledged and its states stored (`hold_acks`; a failed batch's offsets stay
out of every commit, and the worker crashes). A wall-clock timer has the
processor close what quiet devices leave open; another watches consumer lag
for a stalled worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import faust
import mode

from backends.dlq_limit import DlqLimit
from backends.kafka.consent_view import ConsentView
from backends.kafka.lag import LagProbe, observe_worker_lag
from privacy.capture_hours import CaptureHours
from privacy.content_keys import Keys
from schemas.clock import now_micros
from streams.actions import ActionConfig
from streams.activity import ActivityConfig
from streams.changelog import DeviceTable, wait_for_changelogs
from streams.minutes import MinuteConfig
from streams.output import OutputProducer
from streams.processor import (
    CAPTURE_EVENTS,
    BatchProcessor,
    ReaderStopped,
    WorkerConfig,
)
from streams.recovery import TableManager
from streams.router import RawMessage
from streams.session import SessionConfig
from streams.settings import WorkerSettings
from streams.stall import WorkerStalled
from streams.transport import App

__all__ = [
    "HeldAcks",
    "WorkerConfig",
    "build_app",
    "default_app_id",
    "new_app",
    "withhold_acks",
    "worker_config",
]

log = logging.getLogger(__name__)


class HeldAcks:
    """A batch's acks, held until the batch is durable.

    faust's `take_events` acks each event of a batch when the agent takes the
    next one, before a batch committing in the background is durable. One more
    reference on each message (faust counts them, for messages several streams
    read) makes that ack only drop the reference: the message stays unacked
    (its offset is not committed, and a rebalance's `wait_empty` waits for it)
    until `ack` acks it a second time. `withhold` gives a batch that failed up
    for good (`withhold_acks`)."""

    def __init__(self, events: Sequence[Any]) -> None:
        self.events = events
        for event in events:
            event.message.incref()

    def ack(self) -> None:
        for event in self.events:
            event.ack()

    def withhold(self) -> None:
        withhold_acks(self.events)


def withhold_acks(events: Iterable[Any]) -> None:
    """Keep the offsets of a batch that failed out of every later commit.

    faust's `take_events` acks each event of a batch when the agent leaves the
    batch, by an exception too, and a stopping consumer commits what is acked:
    the batch would be skipped after the restart although its outputs may not
    be durable. A message already marked acked is passed over by faust's ack,
    so its offset is never recorded as done, and the commit stops below it."""
    for event in events:
        event.message.acked = True


def default_app_id(settings: WorkerSettings) -> str:
    """The worker's app id (consumer group, prefix of its changelog topics) unless
    told: ``candor-streams`` after the topic prefix, like the sinks' groups
    (`sinks.lag.sink_group`), so that pipelines sharing a cluster never share state."""
    return f"{settings.kafka.topic_prefix}candor-streams"


def worker_config(settings: WorkerSettings, app_id: str | None = None) -> WorkerConfig:
    """The worker's tuning from the settings' `streams` section (and the orgs'
    capture hours from `privacy`); `app_id` defaults to `default_app_id`. Raises
    InvalidCaptureHours on a malformed entry."""
    app_id = app_id or default_app_id(settings)
    st = settings.streams
    sec = 1_000_000
    return WorkerConfig(
        app_id=app_id,
        capture_hours=tuple(CaptureHours.from_dict(h) for h in settings.privacy.capture_hours),
        batch_max=st.batch_max,
        batch_within_s=st.batch_within_s,
        timer_interval_s=st.timer_interval_s,
        stall_s=st.stall_s,
        dlq_limit=DlqLimit(
            max_invalid_ratio=st.dlq_max_ratio, max_consecutive=st.dlq_max_consecutive
        ),
        activity=ActivityConfig(
            session=SessionConfig(
                gap_micros=int(st.session_gap_s * sec),
                max_length_micros=int(st.session_max_s * sec),
                grace_micros=int(st.grace_s * sec),
            ),
            minutes=MinuteConfig(
                grace_micros=int(st.grace_s * sec), quiet_micros=int(st.minute_quiet_s * sec)
            ),
            actions=ActionConfig(
                quiet_micros=int(st.action_quiet_s * sec),
                session_gap_micros=int(st.session_gap_s * sec),
                session_max_length_micros=int(st.session_max_s * sec),
            ),
        ),
    )


AppT = TypeVar("AppT", bound=faust.App)


def new_app(
    app_class: type[AppT],
    app_id: str,
    bootstrap: str,
    partitions: int,
    datadir: Path,
    replication_factor: int = 1,
) -> AppT:
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


def build_app(
    settings: WorkerSettings,
    cfg: WorkerConfig,
    consent: ConsentView,
    output: OutputProducer,
    keys: Keys,
) -> faust.App:
    """Declare the app. Nothing connects until the worker starts."""
    partitions = settings.kafka.partitions
    datadir = settings.home / "streams" / cfg.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = new_app(
        App, cfg.app_id, settings.kafka.bootstrap, partitions, datadir, settings.kafka.replicas()
    )
    t = settings.kafka.topic
    # Idempotent, non-transactional producers: every offset holds a record.
    app.gap_free_topics = frozenset({t(CAPTURE_EVENTS)})
    source = app.topic(
        t(CAPTURE_EVENTS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    # Keys are the device_id bytes, partitioned by the producer's (murmur2) hash
    # exactly as capture clients partition capture.events: the state of a device
    # lives in the changelog partition matching its input partition, whether it
    # was written by the agent (a batch spans many devices) or by the timer.
    # key_type=bytes is what makes faust use the raw key serializer both when
    # writing the changelog and when recovering from it (a Schema with
    # key_serializer="raw" is honoured on write only).
    # value_type=bytes: the raw serializer, so the table holds (and its changelog
    # carries) the compact entries of streams.device_state, not JSON.
    devices = app.Table(
        "devices",
        default=None,
        partitions=partitions,
        use_partitioner=True,
        key_type=bytes,
        value_type=bytes,
    )

    def _commit_failed(err: BaseException) -> None:
        # a batch whose outputs were not acknowledged: its offsets stay unacked,
        # and the worker stops so that a restart reads it again
        app.loop.create_task(app.crash(err))

    processor = BatchProcessor(
        cfg,
        output=output,
        table=devices,
        consent=consent,
        keys=keys,
        clock=now_micros,
        topic=t,
        on_failure=_commit_failed,
    )

    def _drop_cache(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        processor.invalidate()

    def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        processor.rebalanced()

    app.on_partitions_revoked.connect(_drop_cache)
    app.on_partitions_assigned.connect(_drop_cache)
    app.on_rebalance_complete.connect(_rebalanced)
    wait_for_changelogs(app)  # before the streams resume: the first write needs it

    # CrashingSupervisor: an agent that raises (DlqLimitExceeded, OutputFailed)
    # stops the worker instead of being restarted over the same batch forever.
    @app.agent(source, supervisor_strategy=mode.CrashingSupervisor)
    async def route(stream: Any) -> None:
        async for events in stream.take_events(cfg.batch_max, within=cfg.batch_within_s):
            batch = [
                RawMessage(e.key, e.value, e.message.topic, e.message.partition, e.message.offset)
                for e in events
            ]
            held = HeldAcks(events)
            try:
                result = await processor.submit(batch, on_durable=held.ack, on_lost=held.withhold)
            except BaseException:  # failed or cancelled before the batch was durable
                withhold_acks(events)
                raise
            processor.observe_rejections(result)

    lag_probe = LagProbe.create(settings.kafka.client_config(), cfg.app_id, [t(CAPTURE_EVENTS)])

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        try:
            assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
            lags = await observe_worker_lag(lag_probe, assigned)
        except Exception as err:  # a lag gauge must never stop the worker
            log.warning("consumer lag not measured: %s", err)
            return
        stalled = processor.watchdog.stalled(lags, time.monotonic(), app.rebalancing)
        if stalled:
            log.critical("%s", stalled)
            describe = getattr(app.consumer, "describe_intake", None)
            if describe is not None:
                log.critical("intake when stalled: %s", describe())
            await app.crash(WorkerStalled(stalled))

    @app.timer(interval=cfg.timer_interval_s)  # type: ignore[untyped-decorator]
    async def close_quiet_devices() -> None:
        try:
            await processor.tick(app.rebalancing)
        except ReaderStopped as err:
            log.critical("%s", err)
            await app.crash(err)

    return app
