"""The exactly-once sink: one Kafka topic -> one ClickHouse table.

Per message: decode and map to a row (`sinks.routes`); undecodable input
becomes a dead letter. Per batch (one partition's consecutive offsets,
`sinks.batching`):

1. commit the batch's first offset with the intent ``first-last`` as metadata
   (synchronous), so a replay forms the same batch;
2. insert the rows with ``insert_deduplication_token = topic@id:partition:first-last``
   (`sinks.writer`: retries transient failures, bisects refused rows);
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
from collections.abc import Callable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, Message, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from candor.settings import Settings
from sinks import metrics
from sinks.batching import Batch, Batcher, intent_metadata, parse_intent
from sinks.dlq import DeadLetterProducer
from sinks.errors import DeadLetterLimitExceeded, FatalSinkError
from sinks.lag import sink_group
from sinks.routes import ROUTES, Decrypt, Route, Unmappable, identity, map_message, route_for
from sinks.rows import Row
from sinks.writer import RetryPolicy, TableWriter
from streams.dlq import DeadLetter

log = logging.getLogger(__name__)

AfterInsert = Callable[[Batch[Message]], None]


@dataclass(frozen=True)
class SinkOptions:
    """Tuning of one sink. ``after_insert`` runs between the insert and the commit
    (a test hook: a fault test pauses or kills the process there)."""

    max_rows: int = 10_000
    max_age: float = 1.0
    group: str | None = None  # default: candor-sink-<table>
    dlq_topic: str | None = None  # default: capture.dlq with the settings' topic prefix
    decrypt: Decrypt = identity
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_dead_ratio: float = 0.5
    min_batch_for_ratio: int = 100
    after_insert: AfterInsert | None = None


@dataclass
class SinkStats:
    """Totals of one `run_sink` call."""

    batches: int = 0
    rows: int = 0
    dead_letters: int = 0
    retries: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def consumer_config(settings: Settings, group: str) -> dict[str, str | int | float | bool]:
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
    """One consumer, one batcher, one writer; single-threaded."""

    def __init__(self, settings: Settings, topic: str, route: Route, options: SinkOptions,
                 client: Client) -> None:
        self.settings = settings
        self.topic = topic
        self.route = route
        self.options = options
        self.stats = SinkStats()
        self.batcher: Batcher[Message] = Batcher(topic, options.max_rows, options.max_age)
        self.writer = TableWriter(client, route.target, route.columns, retry=options.retry)
        self.dlq = DeadLetterProducer(
            settings, options.dlq_topic or settings.kafka.topic("capture.dlq"), route.table)
        group = options.group or sink_group(settings, route.table)
        self.consumer = Consumer(consumer_config(settings, group))

    def run(self, stop: threading.Event) -> SinkStats:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)
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
        return self.stats

    def _write_all(self, batches: list[Batch[Message]]) -> None:
        """Write ``batches`` in rounds holding at most one batch per partition.

        A round shares its two commits (intents, then positions): committing two
        batches of one partition at once would move its position past a batch
        not yet inserted.
        """
        while batches:
            seen: set[int] = set()
            round_: list[Batch[Message]] = []
            later: list[Batch[Message]] = []
            for batch in batches:
                (later if batch.partition in seen else round_).append(batch)
                seen.add(batch.partition)
            self._write_round(round_)
            batches = later

    def _write_round(self, batches: list[Batch[Message]]) -> None:
        prepared = [self._prepare(b) for b in batches]
        self._commit([(b.partition, b.first, intent_metadata(b)) for b in batches])
        letters: list[DeadLetter] = []
        for batch, (rows, kept, stamps, dead) in zip(batches, prepared, strict=True):
            letters += dead
            result = self.writer.write(rows, batch.token)
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
        self._commit([(b.partition, b.commit_offset, "") for b in batches])

    def _prepare(
        self, batch: Batch[Message]
    ) -> tuple[list[Row], list[Message], list[int], list[DeadLetter]]:
        """Map a batch's messages to rows; refuse it when too much of it is invalid."""
        rows: list[Row] = []
        kept: list[Message] = []
        stamps: list[int] = []
        letters: list[DeadLetter] = []
        for message in batch.items:
            try:
                mapped = map_message(self.route, message.value(), message.headers(),
                                     self.topic, batch.partition, _offset(message),
                                     self.options.decrypt)
            except Unmappable as err:
                letters.append(_letter(message, err.reason, err.error))
                continue
            # none: an erased subject's record, committed past, never landed;
            # several: the events of a CleanBatch (`kept` names each row's message)
            for row, ts in mapped:
                rows.append(row)
                kept.append(message)
                if ts is not None:
                    stamps.append(ts)
        n = len(batch.items)
        if n >= self.options.min_batch_for_ratio and len(letters) / n > self.options.max_dead_ratio:
            raise DeadLetterLimitExceeded(
                f"{len(letters)} of {n} messages of {self.topic}[{batch.partition}] "
                f"{batch.first}-{batch.last} are invalid (first: {letters[0].error[:200]}); "
                "not committing"
            )
        return rows, kept, stamps, letters

    def _commit(self, positions: list[tuple[int, int, str]]) -> None:
        """Commit ``(partition, offset, metadata)`` synchronously; raise `FatalSinkError`."""
        tps = [TopicPartition(self.topic, p, o, m) for p, o, m in positions]
        for result in self.consumer.commit(offsets=tps, asynchronous=False) or ():
            if result.error is not None:
                raise FatalSinkError(self.route.table, f"commit {result} failed: {result.error}")

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self.batcher.topic_id:
            self.batcher.topic_id = _topic_id(self.settings, self.topic)
        for tp in consumer.committed(partitions, timeout=30):
            last = parse_intent(tp.metadata, tp.offset)
            if last is not None:
                log.info("%s[%d]: replaying unfinished batch %d-%d", tp.topic, tp.partition,
                         tp.offset, last)
                self.batcher.pin(tp.partition, last)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.batcher.drop(tp.partition)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise FatalSinkError(self.route.table, f"kafka: {error}")
        log.warning("kafka: %s", error)


def _topic_id(settings: Settings, topic: str) -> str:
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
    return DeadLetter(reason, error, message.topic() or "", message.partition() or 0,
                      _offset(message), message.key(), message.value())


def run_sink(
    settings: Settings,
    topic: str,
    table: str,
    stop_event: threading.Event,
    options: SinkOptions = SinkOptions(),
    client: Client | None = None,
) -> SinkStats:
    """Land ``topic`` in ``table`` exactly once until ``stop_event`` is set.

    Blocks. Returns the totals on a clean stop (after writing what was
    buffered). Raises `FatalSinkError` (table missing, auth, retries
    exhausted, commit refused), `DeadLetterLimitExceeded`, or
    `DeadLetterDeliveryFailed`; offsets of the failing batch are not committed,
    so a restart resumes there.
    """
    from sinks.connection import connect

    route = route_for(table)
    return _Sink(settings, topic, route, options, client or connect(settings)).run(stop_event)


def run_all(settings: Settings, stop_event: threading.Event,
            options: SinkOptions = SinkOptions()) -> dict[str, SinkStats]:
    """Run the sink of every route (its default topic) in its own thread until stopped.

    The first sink to fail stops the others; its error is raised after they ended.
    """
    results: dict[str, SinkStats] = {}
    errors: list[BaseException] = []

    def one(route: Route) -> None:
        try:
            results[route.table] = run_sink(settings, settings.kafka.topic(route.topic),
                                            route.table, stop_event, options)
        except BaseException as err:
            errors.append(err)
            stop_event.set()

    threads = [threading.Thread(target=one, args=(r,), name=f"sink-{r.table}", daemon=True)
               for r in ROUTES.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results

