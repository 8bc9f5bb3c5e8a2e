"""Table changelog topics known to the worker's producer before a table is written.

faust-streaming 0.15.3 picks a changelog record's partition synchronously
(``Producer.key_partition`` -> aiokafka's ``_partition``) from the producer's
cached metadata. aiokafka's producer fetches a topic's metadata only when it
first sends to it (``send`` awaits ``_wait_on_metadata``), so the first write
to a table whose changelog the producer never sent to fails with
``TypeError: 'NoneType' object is not iterable`` in ``_partition``: with
`use_partitioner=True` the partition is needed before anything is sent. On one
broker the agent's first batch usually came after faust had looked the topic
up for another reason; on a 3-broker cluster a worker that starts together
with another (which creates the changelog topic moments before) crashed on
its first batch.

`await_changelog_metadata` runs when a rebalance completes, before faust
resumes the streams (``app.on_rebalance_complete`` is awaited there), and
waits until the producer knows every table's changelog partitions.

Worse, faust declares a changelog topic (``Table.on_start``) while its
consumer is already subscribing: a worker that subscribes before the topic
exists logs "Ignoring missing topic" and its group assigns the changelog's
partitions to nobody until the consumer's metadata next refreshes (aiokafka:
5 minutes). Meanwhile no worker recovers table state when it is assigned a
partition: a device moved to another worker starts again from an empty
state (a new session beside the one its old owner held, events counted
twice or never). `create_changelog_topics` creates them before the worker
starts (`streams.worker`), as faust would, and waits until every partition
has a leader.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams import metrics

log = logging.getLogger(__name__)


async def await_changelog_metadata(app: Any) -> None:
    """Wait until `app`'s producer has metadata for every table changelog topic.

    Blocks (asynchronously) up to the producer's request timeout per topic, as a
    send would; raises aiokafka's `UnknownTopicOrPartitionError` when a topic is
    still unknown then (the agent would crash on its first write anyway)."""
    client = app.producer._ensure_producer().client
    for topic in sorted(app.tables.changelog_topics):
        if client.cluster.partitions_for_topic(topic) is None:
            log.info("%s: fetching the changelog topic's metadata before the first write", topic)
            partitions = await client._wait_on_metadata(topic)
            log.info("%s: %d partitions known to the producer", topic, len(partitions))


def wait_for_changelogs(app: Any) -> None:
    """Connect `await_changelog_metadata` to `app`'s rebalance-complete signal (and
    count the rebalance in ``candor_worker_rebalances_total``)."""

    async def on_rebalance_complete(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        metrics.REBALANCES.inc()
        await await_changelog_metadata(app)

    app.on_rebalance_complete.connect(on_rebalance_complete)


class DeviceTable(faust.Table):  # type: ignore[type-arg]
    """faust's Table whose in-memory store forgets the keys of revoked partitions.

    faust 0.15.3's memory store drops, when a recovery completes, the keys whose
    partition it recorded (`Store._key_partition`) and that are no longer
    assigned; but it records partitions only for keys read from the changelog
    during recovery, never for keys this worker wrote itself. So a worker kept
    the live states of every device it ever processed after their partitions
    went to another worker, and its timer went on closing and publishing those
    stale states (sessions and minutes without the events the new owner folded
    since) and writing them to the changelog, where the next recovery of the
    partition read them back over the owner's newer state. Each write records
    its key's changelog partition here as recovery would, and a rebalance drops
    the states of the partitions it revoked at once (faust's store does so only
    when a recovery completes, and a rebalance that only takes partitions away
    recovers nothing); dropped from memory only, nothing is sent to the
    changelog."""

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topics = {self.changelog_topic.get_topic_name(), *getattr(self.app, "gap_free_topics", ())}
        gone = {tp.partition for tp in revoked if tp.topic in topics}
        dropped = forget_partitions(self.data, gone)
        if dropped:
            log.info(
                "%s: dropped %d states of revoked partitions %s", self.name, dropped, sorted(gone)
            )

    def on_key_set(self, key: Any, value: Any) -> None:
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        partition = fut.message.partition  # finalized by the producer's partitioner
        assert partition is not None
        key_partition = getattr(self.data, "_key_partition", None)
        if key_partition is not None:
            key_partition[key] = partition
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)


def forget_partitions(store: Any, partitions: set[int]) -> int:
    """Drop from an in-memory `store` the keys recorded in `partitions`; returns how many."""
    key_partition = getattr(store, "_key_partition", None)
    data = getattr(store, "data", None)
    if not partitions or key_partition is None or data is None:
        return 0
    keys = [k for k, p in key_partition.items() if p in partitions]
    for key in keys:
        data.pop(key, None)
        key_partition.pop(key, None)
    return len(keys)


class ChangelogUnavailable(RuntimeError):
    """A table changelog topic could not be created or has partitions without a leader."""


def changelog_topics(app: Any) -> dict[str, int]:
    """{changelog topic: partitions} of every table of `app` (declared, not started)."""
    return {
        t.changelog_topic.get_topic_name(): int(t.partitions or app.conf.topic_partitions)
        for t in app.tables.values()
    }


def create_changelog_topics(
    app: Any, client_config: dict[str, Any], timeout_s: float = 60.0
) -> dict[str, str]:
    """Create `app`'s table changelog topics as faust declares them (compacted,
    the table's partitions, the app's replication factor) unless they exist, and
    wait until each partition has a leader. Blocks up to `timeout_s`. Returns
    {topic: "created" | "exists"}; raises `ChangelogUnavailable` otherwise."""
    topics = changelog_topics(app)
    if not topics:
        return {}
    admin = AdminClient(client_config)
    replicas = int(app.conf.topic_replication_factor)
    new = [
        NewTopic(
            name,
            num_partitions=n,
            replication_factor=replicas,
            config={"cleanup.policy": "compact"},
        )
        for name, n in topics.items()
    ]
    result: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            result[name] = "created"
            log.info("%s: created the table changelog topic", name)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ChangelogUnavailable(f"{name}: not created: {err}") from err
            result[name] = "exists"
    deadline = time.monotonic() + timeout_s
    while True:
        missing = _leaderless(admin, topics)
        if not missing:
            return result
        if time.monotonic() > deadline:
            raise ChangelogUnavailable(
                f"changelog partitions without a leader after {timeout_s:.0f} s: {missing}"
            )
        time.sleep(0.5)


def _leaderless(admin: AdminClient, topics: dict[str, int]) -> list[str]:
    try:
        md = admin.list_topics(timeout=10)
    except KafkaException as err:
        return [f"metadata: {err}"]
    missing = []
    for name, partitions in topics.items():
        t = md.topics.get(name)
        if (
            t is None
            or t.error is not None
            or len(t.partitions) < partitions
            or any(p.leader < 0 for p in t.partitions.values())
        ):
            missing.append(name)
    return missing
