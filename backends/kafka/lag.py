"""Consumer lag of a Kafka consumer group: records between what the group
committed and the end of each partition.

Measured from outside the group, so the probe neither joins the group nor
disturbs its assignment, and works the same for the Faust workers (aiokafka)
and the sinks (librdkafka): end offsets through an admin client (ListOffsets),
committed offsets through a consumer handle that carries the group id but
never subscribes (OffsetFetch).

Why not the admin client's `list_consumer_group_offsets`: in librdkafka 2.16
(confluent-kafka 2.16.1), an OffsetFetch answer of NOT_COORDINATOR or
COORDINATOR_NOT_AVAILABLE to an admin client makes librdkafka ask the client's
consumer group to look up its coordinator again, and an admin client has no
consumer group: the process dies of SIGSEGV in librdkafka's own thread
(`rd_kafka_cgrp_op` called with NULL from `rd_kafka_handle_OffsetFetch`, a
known librdkafka bug). A freshly started broker gives that answer for its
first seconds, so a sink started with it crashed. librdkafka threads block
every signal, so such a crash leaves no Python traceback, only the exit
status -11. A consumer handle has a group, and the same answer only makes it
look the coordinator up again.

`lag_by_partition` is the pure rule; `LagProbe.measure` is the blocking shell;
`observe_worker_lag` is what the worker's timer calls (the blocking part runs
in a thread, so the event loop never waits on the broker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)

# OffsetSpec is public API; the package's stubs only forget to re-export it.
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from prometheus_client import Gauge

WORKER_LAG = Gauge(
    "candor_worker_consumer_lag_records",
    "Records of an input partition not yet committed by the worker group "
    "(last stable offset minus committed offset).",
    ["topic", "partition"],
)

Partition = tuple[str, int]


class LagUnavailable(Exception):
    """The broker did not answer the offset requests in time (lag unknown, not zero)."""


def lag_by_partition(
    end: Mapping[Partition, int],
    committed: Mapping[Partition, int | None],
    start: Mapping[Partition, int],
) -> dict[Partition, int]:
    """Lag of every partition in `end` (its last stable offset).

    A partition the group never committed lags by everything still retained
    (`end - start`, the group would read from the earliest offset). A committed
    offset below the retained start counts from the start (those records are
    gone). Never negative: an end offset read before a commit landed can be
    older than the commit.
    """
    lags: dict[Partition, int] = {}
    for tp, last in end.items():
        first = start.get(tp, 0)
        done = committed.get(tp)
        position = first if done is None or done < first else done
        lags[tp] = max(0, last - position)
    return lags


class LagProbe:
    """Measures one group's lag on some topics.

    Owns two librdkafka handles: an admin client (topics, end offsets) and a
    consumer handle with `group.id = group` that never subscribes, so it never
    joins the group (committed offsets). Use one probe from one thread at a
    time; `close` releases the consumer handle (the admin client goes with the
    probe).
    """

    def __init__(
        self,
        kafka_config: Mapping[str, str | int | float | bool],
        group: str,
        topics: Iterable[str],
        timeout_s: float = 5.0,
    ) -> None:
        self._config = dict(kafka_config)
        self.group, self.topics, self.timeout_s = group, tuple(topics), timeout_s
        self.admin = AdminClient(self._config)
        self._offsets_reader = self._new_offsets_reader()

    @classmethod
    def create(
        cls,
        kafka_config: Mapping[str, str | int | float | bool],
        group: str,
        topics: Iterable[str],
        timeout_s: float = 5.0,
    ) -> LagProbe:
        """A probe over `topics` for `group` with librdkafka settings `kafka_config`."""
        return cls(kafka_config, group, topics, timeout_s)

    def _new_offsets_reader(self) -> Consumer:
        return Consumer(
            {
                **self._config,
                "group.id": self.group,
                # never subscribes, so never joins, is never assigned, never commits
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )

    def measure(self) -> dict[Partition, int]:
        """Lag per (topic, partition) of the probe's topics, now.

        Blocks for up to about four broker round trips. Topics that do not
        exist yet are skipped. Raises `LagUnavailable` when the broker does not
        answer within `timeout_s` or refuses (a new broker's first seconds:
        NOT_LEADER_FOR_PARTITION); after a timeout the next call uses new
        handles (after a broker was killed and restarted, an old admin client
        was seen timing out on every request for minutes).
        """
        try:
            parts = self._partitions()
            if not parts:
                return {}
            end = self._offsets(parts, OffsetSpec.latest())  # type: ignore[no-untyped-call]
            committed = self._committed(parts)
            missing = [tp for tp in parts if committed.get(tp) is None]
            start = (
                self._offsets(missing, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
                if missing
                else {}
            )
        except (KafkaException, TimeoutError) as err:  # futures time out with TimeoutError
            if _timed_out(err):
                self._renew()
            raise LagUnavailable(f"lag of group {self.group}: {err}") from err
        return lag_by_partition(end, committed, start)

    def close(self) -> None:
        """Release the consumer handle (blocks until librdkafka let it go). Idempotent;
        `measure` raises RuntimeError afterwards."""
        self._offsets_reader.close()

    def _renew(self) -> None:
        # The old handles go away here, in the one thread that uses the probe,
        # so no other thread can be waiting on them; requests the old admin
        # client still had in flight end with it.
        old, self._offsets_reader = self._offsets_reader, self._new_offsets_reader()
        old.close()
        self.admin = AdminClient(self._config)

    def _partitions(self) -> list[Partition]:
        meta = self.admin.list_topics(timeout=self.timeout_s)
        return [
            (t, p)
            for t in self.topics
            if t in meta.topics
            for p in sorted(meta.topics[t].partitions)
        ]

    def _offsets(self, parts: list[Partition], spec: OffsetSpec) -> dict[Partition, int]:
        request = {TopicPartition(t, p): spec for t, p in parts}
        futures = self.admin.list_offsets(
            request, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=self.timeout_s
        )
        return {
            (tp.topic, tp.partition): int(f.result(self.timeout_s).offset)
            for tp, f in futures.items()
        }

    def _committed(self, parts: list[Partition]) -> dict[Partition, int | None]:
        """The group's committed offsets (None: nothing committed).

        Raises KafkaException when the coordinator does not answer in time."""
        result = self._offsets_reader.committed(
            [TopicPartition(t, p) for t, p in parts], timeout=self.timeout_s
        )
        committed: dict[Partition, int | None] = {}
        for tp in result:
            if tp.error is not None:
                raise KafkaException(tp.error)
            # librdkafka reports "nothing committed" as a negative offset (-1001).
            committed[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return committed


def _timed_out(err: KafkaException | TimeoutError) -> bool:
    if isinstance(err, TimeoutError):
        return True
    code = err.args[0].code() if err.args and isinstance(err.args[0], KafkaError) else None
    return code in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)


def publish_lag(gauge: Gauge, lags: Mapping[Partition, int], shown: set[Partition]) -> None:
    """Set `gauge{topic, partition}` to each partition's lag and drop the series of
    partitions in `shown` (what this caller published last time) that are no longer
    measured (moved to another worker, topic deleted). Updates `shown`."""
    for topic, partition in shown - lags.keys():
        gauge.remove(topic, str(partition))
    for (topic, partition), lag in lags.items():
        gauge.labels(topic, str(partition)).set(lag)
    shown.clear()
    shown.update(lags)


_WORKER_SHOWN: set[Partition] = set()


async def observe_worker_lag(
    probe: LagProbe, assigned: Collection[Partition] | None = None
) -> dict[Partition, int]:
    """Measure the worker group's lag in a thread and export it as
    `candor_worker_consumer_lag_records`, for the worker's timer.

    `assigned` (e.g. ``{(tp.topic, tp.partition) for tp in app.consumer.assignment()}``)
    limits the export to this worker's partitions, so several workers of one
    group do not each report every partition; None exports all. Returns the
    exported lags; on `LagUnavailable` leaves the gauge as it was and returns {}.
    """
    try:
        lags = await asyncio.to_thread(probe.measure)
    except LagUnavailable:
        return {}
    if assigned is not None:
        mine = set(assigned)
        lags = {tp: lag for tp, lag in lags.items() if tp in mine}
    publish_lag(WORKER_LAG, lags, _WORKER_SHOWN)
    return lags
