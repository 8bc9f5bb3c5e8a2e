"""The whole pipeline scaled out on the 3-broker Kafka cluster (12 partitions) and the
2-shard ClickHouse, under load: 2 `candor worker` and 2 `candor sink --all` processes, a
third worker joining mid-load, one worker stopped, one broker killed -9 and restarted.

Afterwards every acknowledged event is in ClickHouse exactly once, and the sessions,
minutes and actions tables hold exactly what the stream published. The pauses in the
stream's output around the rebalances and the broker kill are printed (figures, not
assertions: tests never assert on wall-clock time).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import Settings, replace
from privacy.consent import grant
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import Simulator
from schemas.codec import decode, encode_event
from sinks.migrate import migrate
from tests.cluster.clusters import KafkaCluster
from tests.harness import CandorProcess, TopicReader, free_port, wait_until

PEOPLE = 24
SIM_SECONDS = 60
CHUNKS = 30
SCOPES = [
    "activity_metadata",
    "keystroke_content",
    "screen_frames",
    "ide_content",
    "terminal_content",
    "training_use",
    "analytics",
]


def _now() -> int:
    return time.time_ns() // 1000


def _scalar(client: Any, sql: str) -> int:
    return int(client.query(sql).result_rows[0][0])


class Load(threading.Thread):
    """Sends the events in `CHUNKS` chunks, one a second, through an idempotent acks=all
    producer. A record the producer gives up on (e.g. its message timeout passes while
    a broker is down) is sent again, as the capture SDK's spool does, until acknowledged.
    `sent` counts the chunks whose every record was acknowledged, `where` maps each
    event id to its (partition, offset) in capture.events, `refused` counts the errors
    of deliveries that were sent again."""

    def __init__(self, settings: Settings, events: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.topic = settings.kafka.topic("capture.events")
        self.producer = Producer(producer_config(settings.kafka.bootstrap))
        self.events, self.sent, self.error = events, 0, ""
        self.where: dict[str, tuple[int, int]] = {}
        self.refused: Counter[str] = Counter()
        self._again: list[dict[str, Any]] = []

    def _delivered(self, event: dict[str, Any]) -> Callable[[KafkaError | None, Message], None]:
        def record(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                self.where[event["event_id"]] = (int(msg.partition() or 0), int(msg.offset() or 0))
            else:
                self.refused[err.name()] += 1
                self._again.append(event)

        return record

    def _send(self, events: list[dict[str, Any]]) -> bool:
        for _ in range(5):
            for e in events:
                self.producer.produce(
                    self.topic,
                    key=e["device_id"],
                    value=encode_event(e),
                    on_delivery=self._delivered(e),
                )
                self.producer.poll(0)
            left = self.producer.flush(60)
            if left:
                self.error = f"{left} records neither acknowledged nor refused in 60 s"
                return False
            events, self._again = self._again, []
            if not events:
                return True
        self.error = f"{len(events)} records refused 5 times: {dict(self.refused)}"
        return False

    def run(self) -> None:
        size = -(-len(self.events) // CHUNKS)
        for i in range(0, len(self.events), size):
            if not self._send(self.events[i : i + size]):
                return
            self.sent += 1
            time.sleep(1)


def _quiet(log: str, lines: int = 25) -> str:
    """A log tail without librdkafka's connection chatter (lines starting with %)."""
    return "\n".join([line for line in log.splitlines() if not line.startswith("%")][-lines:])


def _pause(records: list[Any], around_ms: int, window_ms: int = 30_000) -> int:
    """The longest pause (ms) between consecutive output records of one partition that
    overlaps the `window_ms` after `around_ms`, over all partitions: a stall that began
    before the mark or outlasts the window counts whole. An upper bound: the load itself
    comes in chunks a second apart."""
    by_partition: dict[int, list[int]] = defaultdict(list)
    for m in records:
        by_partition[m.partition()].append(m.timestamp()[1])
    return max(
        (
            b - a
            for times in by_partition.values()
            for a, b in itertools.pairwise(sorted(times))
            if b >= around_ms and a <= around_ms + window_ms
        ),
        default=0,
    )


def test_workers_and_sinks_scale_out_through_a_broker_kill(
    cluster_settings: Settings, kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    s = replace(
        cluster_settings,
        streams={
            "session_gap_s": 20,
            "grace_s": 2,
            "minute_quiet_s": 5,
            "action_quiet_s": 2,
            "timer_interval_s": 1,
            "batch_within_s": 0.2,
        },
    )
    create_topics(s)
    migrate(s)
    sim = Simulator(PEOPLE, seed=int(time.time()), start_ts=_now() - 90_000_000)
    devices = sim.devices
    grant_many(
        s,
        [
            grant(None, SCOPES, "cluster", _now(), subject_id=d.subject_id, org_id="org-sim")
            for d in devices[:-1]
        ],
        "cluster",
    )
    no_consent = devices[-1].subject_id
    events = list(sim.events(SIM_SECONDS))
    expected = {e["event_id"] for e in events if e["subject_id"] != no_consent}

    logs = tmp_path / "logs"
    app_id = f"{s.kafka.topic_prefix}streams"

    def worker(name: str) -> CandorProcess:
        return CandorProcess(
            name, ["worker", "--metrics-port", str(free_port()), "--app-id", app_id], s, logs
        )

    def sink(name: str) -> CandorProcess:
        return CandorProcess(
            name, ["sink", "--all", "--max-age", "0.5", "--metrics-port", str(free_port())], s, logs
        )

    w1, w2, w3 = worker("worker-1"), worker("worker-2"), worker("worker-3")
    k1, k2 = sink("sink-1"), sink("sink-2")
    clean = TopicReader(s, s.kafka.topic("capture.clean"))
    readers = {
        t: TopicReader(s, s.kafka.topic(t))
        for t in ("activity.sessions", "activity.minutes", "training.actions")
    }
    running = [w1, w2, k1, k2]
    restarts: list[str] = []
    ch = connect(s)

    def supervise() -> bool:
        """Restart what exited, as a supervisor would; the test's diagnostics name them."""
        for p in running:
            if not p.running:
                restarts.append(p.name)
                p.start()
        return True

    def diag() -> str:
        landed = {r[0] for r in ch.query("SELECT DISTINCT event_id FROM events").result_rows}
        missing = expected - landed
        located = sorted(load.where[e] for e in missing if e in load.where)
        while clean.poll(1.0):
            pass
        routed = {e["event_id"] for e in clean.events()}
        return (
            f"{len(missing)} of {len(expected)} acknowledged events not in ClickHouse "
            f"({len(landed)} landed; of the missing, {len(missing & routed)} are in "
            f"capture.clean); at capture.events (partition, offset): "
            f"{located[:20]}; restarts by the supervisor: {restarts}; deliveries refused "
            f"and sent again: {dict(load.refused)}\n"
            + "\n".join(_quiet(p.tail(80)) for p in (w1, w2, w3, k1, k2))
        )

    for p in running:
        p.start()
    load = Load(s, events)
    marks: dict[str, int] = {}
    try:
        load.start()
        wait_until(lambda: supervise() and load.sent >= 8, 120, "a third of the load", diag=diag)
        marks["worker-3 joins"] = int(time.time() * 1000)
        w3.start()
        running.append(w3)
        wait_until(lambda: supervise() and load.sent >= 15, 120, "half the load", diag=diag)
        marks["broker 2 killed"] = int(time.time() * 1000)
        kafka_cluster.kill9(2)
        time.sleep(5)
        kafka_cluster.start_node(2)
        wait_until(
            lambda: supervise() and load.sent >= 22, 180, "two thirds of the load", diag=diag
        )
        marks["worker-1 stops"] = int(time.time() * 1000)
        running.remove(w1)
        assert w1.stop() == 0, w1.tail()
        load.join(240)
        assert not load.is_alive() and not load.error, load.error or "load still sending"

        wait_until(
            lambda: (
                supervise()
                and _scalar(ch, "SELECT uniqExact(event_id) FROM events") >= len(expected)
            ),
            300,
            "every acknowledged event in ClickHouse",
            diag=diag,
        )
        wait_until(
            lambda: (
                supervise()
                and _scalar(ch, "SELECT sum(event_ids_count) FROM sessions FINAL") >= len(expected)
            ),
            240,
            "the sessions of every device in ClickHouse",
            diag=diag,
        )
        time.sleep(3)  # the last minutes and actions batches

        assert _scalar(ch, "SELECT count() FROM events FINAL") == len(expected)
        assert {r[0] for r in ch.query("SELECT event_id FROM events").result_rows} == expected
        for table in ("events", "sessions", "activity_minutes", "actions"):
            assert (
                _scalar(ch, f"SELECT count() FROM {table} WHERE subject_id = '{no_consent}'") == 0
            ), table

        for reader in (clean, *readers.values()):
            while reader.poll(2.0):
                pass
        published = {
            decode(m.value())[1]["session_id"]: decode(m.value())[1]
            for m in readers["activity.sessions"].records
        }
        rows = ch.query(
            "SELECT session_id, event_ids_count, keystrokes, clicks FROM sessions FINAL"
        ).result_rows
        assert {r[0]: (r[1], r[2], r[3]) for r in rows} == {
            k: (v["event_ids_count"], v["keystrokes"], v["clicks"]) for k, v in published.items()
        }
        minutes: dict[tuple[str, str, int], int] = {}
        for m in readers["activity.minutes"].records:
            d = decode(m.value())[1]
            minutes[(d["subject_id"], d["device_id"], d["window_start"])] = d["events"]
        per_subject: dict[str, int] = defaultdict(int)
        for (subject, _, _), n in minutes.items():
            per_subject[subject] += n
        landed = ch.query(
            "SELECT subject_id, sum(events) FROM activity_minutes GROUP BY subject_id"
        ).result_rows
        assert {str(k): int(v) for k, v in landed} == dict(per_subject)
        published_actions = {
            decode(m.value())[1]["action_id"] for m in readers["training.actions"].records
        }
        landed_actions = {r[0] for r in ch.query("SELECT action_id FROM actions").result_rows}
        assert landed_actions == published_actions

        pauses = {what: _pause(clean.records, at) for what, at in marks.items()}
        print(
            f"\nscale-out: {len(expected)} events, {len(published)} sessions, "
            f"{len(published_actions)} actions; capture.clean records {len(clean.records)}; "
            f"longest output pause (ms) after: {pauses}; restarts by the supervisor: "
            f"{restarts or 'none'}; deliveries refused and sent again: "
            f"{dict(load.refused) or 'none'}"
        )
    finally:
        for p in (w1, w2, w3, k1, k2):
            p.stop()
        for r in (clean, *readers.values()):
            r.close()
        for url in s.clickhouse.shard_urls:
            one = replace(s, clickhouse={"url": url})
            connect(one, database="").command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")
