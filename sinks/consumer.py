"""The exactly-once sink: one Kafka topic -> one ClickHouse table.

Per message: decode and map to rows, gathered as columns (`sinks.routes.map_into`:
a CleanBatch's events at once); undecodable input becomes a dead letter. Per
batch (one partition's consecutive offsets, `sinks.batching`), inserted as
columns (`sinks.writer`):

1. commit the batch's first offset with the intent ``first-last`` as metadata
   (synchronous), so a replay forms the same batch;
2. insert the rows with ``insert_deduplication_token = topic@id:partition:first-last``
   (`sinks.writer`: retries transient failures, bisects refused rows); the
   batches of one round (one per partition) on up to ``insert_threads``
   connections at once;
3. send dead letters (undecodable, refused) and wait for their acknowledgement;
4. commit ``last + 1`` (synchronous).

A crash anywhere before 4 replays the batch from its first offset with the
same boundaries: rows already inserted are dropped by ClickHouse's dedup
window, dead letters may be sent twice (collapsed in ``dead_letters``). Offsets
are never stored automatically (``enable.auto.commit=False``,
``enable.auto.offset.store=False``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from backends.dlq_limit import DlqLimit, DlqLimitExceeded, DlqPolicy
from privacy.content_keys import Decrypt
from schemas.dead_letter import DeadLetter
from schemas.topics import Topic
from sinks import metrics
from sinks.batching import Batch, Batcher, intent_metadata, parse_intent
from sinks.columns import Columns
from sinks.commits import CommitError, CommitFailure, commit_retrying, raise_partition_errors
from sinks.dlq import DeadLetterProducer
from sinks.errors import DeadLetterLimitExceeded, FatalSinkError
from sinks.lag import sink_group
from sinks.routes import ROUTES, Route, Unmappable, map_into, route_for
from sinks.settings import SinkSettings
from sinks.writer import RetryPolicy, TableWriter, WriteResult

log = logging.getLogger(__name__)

AfterInsert = Callable[[Batch[Message]], None]


@dataclass(frozen=True)
class SinkOptions:
    """Tuning of one sink. ``decrypt`` is required: content arrives encrypted per
    subject (`privacy.content_keys.sink_decrypt`), and a sink without it would
    land ciphertext (`privacy.content_keys.keep_content` for records that carry
    none). ``after_insert`` runs between the insert and the commit (a test hook:
    a fault test pauses or kills the process there)."""

    decrypt: Decrypt
    max_rows: int = 10_000
    max_age: float = 1.0
    # ClickHouse connections a round's inserts share (one batch per partition
    # each, independent of the others): a small insert costs ~15 ms however few
    # its rows, more while the engine waits for a core, and a round of 12
    # partitions one after another took ~0.4 s at 5,000 events/s; on 3
    # connections capture-to-queryable p99 was 1.71 / 2.83 s at 5,000 / 10,000
    # events/s, on 12 1.38 / 2.28 (bench/e2e.py). `run_sink` opens them (the
    # CLI's default is 12); with a client passed in, that one client inserts alone.
    insert_threads: int = 1
    group: str | None = None  # default: candor-sink-<table>
    dlq_topic: str | None = None  # default: capture.dlq with the settings' topic prefix
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # the dead-letter limit shared with the stream worker, per partition
    dlq_limit: DlqLimit = field(default_factory=DlqLimit)
    after_insert: AfterInsert | None = None


@dataclass
class SinkStats:
    """Totals of one `run_sink` call."""

    batches: int = 0
    rows: int = 0
    dead_letters: int = 0
    retries: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def consumer_config(settings: SinkSettings, group: str) -> dict[str, str | int | float | bool]:
    """librdkafka settings of a sink consumer (manual, synchronous commits only)."""
    return {
        **settings.kafka.client_config(),
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # an insert may back off for about a minute before it gives up
        "max.poll.interval.ms": 300_000,
    }


class _Sink:
    """One consumer, one batcher, a writer per ClickHouse client; one thread
    but for a round's inserts, which run on the writers' threads."""

    def __init__(
        self,
        settings: SinkSettings,
        topic: str,
        route: Route,
        options: SinkOptions,
        clients: Sequence[Client],
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.route = route
        self.options = options
        self.stats = SinkStats()
        self.batcher: Batcher[Message] = Batcher(topic, options.max_rows, options.max_age)
        self.writers = [
            TableWriter(client, route.target, route.columns, retry=options.retry)
            for client in clients
        ]
        self.inserting = (
            ThreadPoolExecutor(len(self.writers), thread_name_prefix=f"insert-{route.table}")
            if len(self.writers) > 1
            else None
        )
        self.dlq_policy = DlqPolicy(options.dlq_limit)
        self.dlq = DeadLetterProducer(
            settings, options.dlq_topic or settings.kafka.topic(Topic.CAPTURE_DLQ), route.table
        )
        group = options.group or sink_group(settings, route.table)
        self.consumer = Consumer(consumer_config(settings, group))

    def run(self, stop: threading.Event) -> SinkStats:
        self.consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            while not stop.is_set():
                messages = self.consumer.consume(
                    num_messages=min(self.options.max_rows, 5_000),
                    timeout=min(0.1, self.options.max_age / 4),
                )
                now = time.monotonic()
                ready: list[Batch[Message]] = []
                for message in messages:
                    error = message.error()
                    if error is not None:
                        self._on_error(error)
                        continue
                    partition, offset = message.partition(), message.offset()
                    assert partition is not None and offset is not None
                    ready += self.batcher.add(partition, offset, message, now)
                ready += self.batcher.due(time.monotonic())
                self._write_all(ready)
            # Clean stop: what is buffered and not pinned is written now.
            self._write_all(self.batcher.due(float("inf")))
        finally:
            self.consumer.close()
            if self.inserting is not None:
                self.inserting.shutdown()
        return self.stats

    def _write_all(self, batches: list[Batch[Message]]) -> None:
        """Write ``batches`` in rounds holding at most one batch per partition.

        A round shares its two commits (intents, then positions): committing two
        batches of one partition at once would move its position past a batch
        not yet inserted. When a commit finds the group rebalanced, this round
        and the batches after it are given up (`_give_up`): the partitions'
        owner resumes from what is committed.
        """
        while batches:
            seen: set[int] = set()
            round_: list[Batch[Message]] = []
            later: list[Batch[Message]] = []
            for batch in batches:
                (later if batch.partition in seen else round_).append(batch)
                seen.add(batch.partition)
            if not self._write_round(round_):
                return
            batches = later

    def _insert(self, inserts: list[tuple[Columns, str]]) -> list[WriteResult]:
        """Insert each ``(rows, token)``; their results in order. With several
        writers, writer i takes every i-th insert, the writers at once; the
        first error is raised once all have ended (an insert that went through
        is harmless: nothing is committed, and its replay carries its token)."""
        if self.inserting is None or len(inserts) < 2:
            writer = self.writers[0]
            return [writer.write(rows, token) for rows, token in inserts]
        n = len(self.writers)

        def share(i: int) -> list[WriteResult]:
            return [self.writers[i].write(rows, token) for rows, token in inserts[i::n]]

        futures = [self.inserting.submit(share, i) for i in range(min(n, len(inserts)))]
        errors = [err for f in futures if (err := f.exception()) is not None]
        if errors:
            raise errors[0]
        shares = [f.result() for f in futures]
        return [shares[k % n][k // n] for k in range(len(inserts))]

    def _write_round(self, batches: list[Batch[Message]]) -> bool:
        """Insert one round; False when the group rebalanced under it (given up)."""
        prepared = [self._prepare(b) for b in batches]
        if not self._commit([(b.partition, b.first, intent_metadata(b)) for b in batches]):
            self._give_up(batches, intent_committed=False)
            return False
        letters: list[DeadLetter] = []
        inserts = [(rows, b.token) for b, (rows, *_) in zip(batches, prepared, strict=True)]
        results = self._insert(inserts)
        for batch, (_rows, kept, stamps, dead), result in zip(
            batches, prepared, results, strict=True
        ):
            letters += dead
            refused: set[int] = set()  # offsets: a CleanBatch with several refused rows
            for rejected in result.rejected:  # is dead-lettered once
                if self.route.record is None:  # a dead letter refused by dead_letters: log
                    log.error("dead_letters refused %s: %s", batch.token, rejected.error[:300])
                    continue
                message = kept[rejected.index]
                if _offset(message) in refused:
                    continue
                refused.add(_offset(message))
                letters.append(_letter(message, "rejected_by_clickhouse", rejected.error))
            self.stats.batches += 1
            self.stats.rows += result.written
            self.stats.retries += result.retries
            if stamps:
                now = time.time()
                for ts in stamps:
                    metrics.END_TO_END_LAG.observe(now - ts / 1_000_000)
        for letter in letters:
            self.dlq.send(letter)
            self.stats.by_reason[letter.reason] = self.stats.by_reason.get(letter.reason, 0) + 1
        if letters:
            self.dlq.flush()
        self.stats.dead_letters += len(letters)
        if self.options.after_insert is not None:
            for batch in batches:
                self.options.after_insert(batch)
        if not self._commit([(b.partition, b.commit_offset, "") for b in batches]):
            self._give_up(batches, intent_committed=True)
            return False
        return True

    def _give_up(self, batches: list[Batch[Message]], intent_committed: bool) -> None:
        """The group rebalanced before ``batches`` were committed: forget what is
        buffered of their partitions and read them again from the batch's first
        offset (pinned to the same last offset when its intent is committed, so a
        replay carries the same insert token). If the partition went to another
        sink, the seek fails harmlessly and the new owner replays it."""
        for batch in batches:
            dropped = self.batcher.drop(batch.partition)
            if intent_committed:
                self.batcher.pin(batch.partition, batch.last)
            log.warning(
                "%s[%d]: group rebalanced before batch %d-%d was committed "
                "(inserted: %s); %d buffered messages dropped, reading again from %d",
                self.topic,
                batch.partition,
                batch.first,
                batch.last,
                "yes" if intent_committed else "no",
                dropped,
                batch.first,
            )
            try:
                self.consumer.seek(TopicPartition(self.topic, batch.partition, batch.first))
            except KafkaException as err:  # no longer assigned: its next owner reads it
                log.info("%s[%d]: not sought back (%s)", self.topic, batch.partition, err)

    def _prepare(
        self, batch: Batch[Message]
    ) -> tuple[Columns, list[Message], list[int], list[DeadLetter]]:
        """Map a batch's messages to columns (`sinks.routes.map_into`: a CleanBatch's
        events at once); refuse it when too much of it is invalid.
        ``kept[i]`` is the message row ``i`` came from."""
        columns = Columns(len(self.route.columns))
        kept: list[Message] = []
        stamps: list[int] = []
        letters: list[DeadLetter] = []
        rejected: list[bool] = []  # per message, in order: the dead-letter limit's input
        for message in batch.items:
            try:
                added = map_into(
                    self.route,
                    columns,
                    stamps,
                    message.value(),
                    message.headers(),
                    self.topic,
                    batch.partition,
                    _offset(message),
                    self.options.decrypt,
                )
            except Unmappable as err:
                letters.append(_letter(message, err.reason, err.error))
                rejected.append(True)
                continue
            rejected.append(False)
            # none: an erased subject's record, committed past, never landed;
            # several: the events of a CleanBatch (`kept` names each row's message)
            kept += [message] * added
        try:  # before anything is dead-lettered or committed
            self.dlq_policy.observe_all(rejected, batch.partition)
        except DlqLimitExceeded as err:
            raise DeadLetterLimitExceeded(
                f"{self.topic}[{batch.partition}] {batch.first}-{batch.last}: {err} "
                f"(first: {letters[0].error[:200]}); not committing"
            ) from err
        return columns, kept, stamps, letters

    def _commit(self, positions: list[tuple[int, int, str]]) -> bool:
        """Commit ``(partition, offset, metadata)`` synchronously, retrying retriable
        errors (a coordinator moving during a broker failover; `sinks.commits`).
        Returns False when the group rebalanced (nothing may be assumed committed);
        raises `FatalSinkError` on any other failure."""
        tps = [TopicPartition(self.topic, p, o, m) for p, o, m in positions]

        def commit() -> None:
            raise_partition_errors(self.consumer.commit(offsets=tps, asynchronous=False))

        try:
            commit_retrying(commit, f"{self.topic}: commit of {len(tps)} partitions")
        except CommitError as err:
            if err.kind is CommitFailure.REBALANCED:
                return False
            raise FatalSinkError(self.route.table, f"commit {tps} failed: {err}") from err
        return True

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self.batcher.topic_id:
            self.batcher.topic_id = _topic_id(self.settings, self.topic)
        try:
            committed = commit_retrying(
                lambda: consumer.committed(partitions, timeout=30),
                f"{self.topic}: committed offsets",
            )
        except CommitError as err:
            raise FatalSinkError(self.route.table, f"committed offsets not read: {err}") from err
        for tp in committed:
            last = parse_intent(tp.metadata, tp.offset)
            if last is not None:
                log.info(
                    "%s[%d]: replaying unfinished batch %d-%d",
                    tp.topic,
                    tp.partition,
                    tp.offset,
                    last,
                )
                self.batcher.pin(tp.partition, last)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.batcher.drop(tp.partition)
            self.dlq_policy.forget(tp.partition)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise FatalSinkError(self.route.table, f"kafka: {error}")
        log.warning("kafka: %s", error)


def _topic_id(settings: SinkSettings, topic: str) -> str:
    """The broker's id of `topic` (part of every insert token), or "" when the
    broker does not say within a few tries (tokens are then as before ids)."""
    admin = AdminClient(dict(settings.kafka.client_config()))
    for attempt in range(3):
        try:
            described = admin.describe_topics(TopicCollection([topic]), request_timeout=10)
            return str(described[topic].result().topic_id)
        except Exception as err:  # KafkaException; a sink must not stop over it
            log.warning("%s: topic id not known (%s), attempt %d", topic, err, attempt + 1)
            time.sleep(1)
    log.warning("%s: insert tokens without the topic id", topic)
    return ""


def _offset(message: Message) -> int:
    offset = message.offset()
    return -1 if offset is None else offset


def _letter(message: Message, reason: str, error: str) -> DeadLetter:
    return DeadLetter(
        reason,
        error,
        message.topic() or "",
        message.partition() or 0,
        _offset(message),
        message.key(),
        message.value(),
    )


def run_sink(
    settings: SinkSettings,
    topic: str,
    table: str,
    stop_event: threading.Event,
    options: SinkOptions,
    client: Client | None = None,
) -> SinkStats:
    """Land ``topic`` in ``table`` exactly once until ``stop_event`` is set.

    Blocks. Returns the totals on a clean stop (after writing what was
    buffered). Raises `FatalSinkError` (table missing, auth, retries
    exhausted, commit refused), `DeadLetterLimitExceeded`, or
    `DeadLetterDeliveryFailed`; offsets of the failing batch are not committed,
    so a restart resumes there.
    """
    from backends.clickhouse.connection import connect

    route = route_for(table)
    threads = max(1, options.insert_threads)
    clients = [client] if client is not None else [connect(settings) for _ in range(threads)]
    return _Sink(settings, topic, route, options, clients).run(stop_event)


def run_all(
    settings: SinkSettings, stop_event: threading.Event, options: SinkOptions
) -> dict[str, SinkStats]:
    """Run the sink of every route (its default topic) in its own thread until stopped.

    The first sink to fail stops the others; its error is raised after they ended.
    """
    results: dict[str, SinkStats] = {}
    errors: list[BaseException] = []

    def one(route: Route) -> None:
        try:
            results[route.table] = run_sink(
                settings, settings.kafka.topic(route.topic), route.table, stop_event, options
            )
        except BaseException as err:
            errors.append(err)
            stop_event.set()

    threads = [
        threading.Thread(target=one, args=(r,), name=f"sink-{r.table}", daemon=True)
        for r in ROUTES.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
