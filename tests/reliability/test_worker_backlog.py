"""A stream worker killed -9 and restarted twice over a backlog of 25,000
capture events: every event reaches capture.clean.

A restart over a backlog is where faust-streaming's start-up path lost
records: table recovery ends, the partitions resume with records already
flowing, ``perform_seek()`` runs and ``flow_control.resume()`` clears the
agents' queues (see streams/offsets.py). Runs on the shared servers with a
topic prefix of its own: only the worker process is killed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from backends.kafka.consent_registry import grant_many
from candor.settings import Settings, replace
from privacy.consent import grant
from privacy.scope import Scope
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import Simulator
from schemas.codec import encode_event
from tests.harness import (
    CandorProcess,
    TopicReader,
    clean_events,
    drop_pipeline,
    free_port,
    private_pipeline,
    scrape,
    wait_until,
)

EVENTS = 25_000
PEOPLE = 40


@pytest.fixture
def backlog_settings(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = private_pipeline(settings, unique, tmp_path / "home", prefix="rel")
    yield s
    drop_pipeline(s)


def test_worker_restarted_over_a_backlog_loses_nothing(
    backlog_settings: Settings, tmp_path: Path
) -> None:
    # The worker's stall watch ends a worker that takes nothing while records
    # wait; its supervisor (here: `supervise`) starts it again. Seen once in ten
    # runs: a restarted worker took one batch and then nothing (issue 11 note).
    s = replace(backlog_settings, streams={"stall_s": 60})
    now = time.time_ns() // 1000
    sim = Simulator(
        PEOPLE, seed=int(now % 1_000_000), start_ts=now - 3_600_000_000, org_id="org-backlog"
    )
    grant_many(
        s,
        [
            grant(
                None,
                [x.value for x in Scope],
                "backlog",
                now,
                subject_id=d.subject_id,
                org_id="org-backlog",
            )
            for d in sim.devices
        ],
        "backlog",
    )
    events = list(itertools.islice(sim.events(365 * 86_400.0), EVENTS))
    assert len(events) == EVENTS
    producer = Producer(producer_config(s.kafka.bootstrap))
    topic = s.kafka.topic("capture.events")
    for e in events:
        producer.produce(topic, key=e["device_id"], value=encode_event(e))
        producer.poll(0)
    assert producer.flush(60) == 0  # every event acknowledged by the broker
    expected = {e["event_id"] for e in events}

    port = free_port()
    worker = CandorProcess(
        "worker",
        ["worker", "--metrics-port", str(port), "--app-id", f"{s.kafka.topic_prefix}streams"],
        s,
        tmp_path / "logs",
    )
    clean = TopicReader(s, s.kafka.topic("capture.clean"))
    routed: set[str] = set()

    restarts: list[int] = []

    def poll() -> int:
        if not worker.running:  # as a supervisor would (systemd, Kubernetes)
            restarts.append(worker.stop() or 0)
            worker.start()
        routed.update(e["event_id"] for e in clean_events(clean.poll(0.2)))
        return len(routed)

    def diag() -> str:
        seen: dict[str, object]
        try:
            seen = {
                f"{k[0]}{dict(k[1])}": v
                for k, v in scrape(port).items()
                if k[0].startswith(
                    (
                        "candor_worker_events",
                        "candor_worker_drops",
                        "candor_worker_dead",
                        "candor_worker_offsets",
                    )
                )
            }
        except OSError as err:
            seen = {"metrics": str(err)}
        missing = sorted(expected - routed)
        return (
            f"{len(routed)} of {EVENTS} routed, {len(missing)} missing "
            f"(first: {missing[:5]}); restarts (exit codes): {restarts}; worker: {seen}"
            f"\n{worker.tail(60)}"
        )

    worker.start()
    try:
        for share in (0.2, 0.6):  # killed twice mid-backlog, restarted at once
            wanted = int(EVENTS * share)
            wait_until(
                lambda: poll() >= wanted,  # noqa: B023 (called before the next iteration)
                240,
                f"{share:.0%} of the backlog routed",
                diag=diag,
                interval=0.05,
            )
            worker.kill9()
            worker.start()
        wait_until(
            lambda: poll() >= EVENTS,
            420,
            "every backlog event in capture.clean",
            diag=diag,
            interval=0.5,
        )
        assert routed == expected
        print(f"restarts by the supervisor (exit codes): {restarts or 'none'}")
    finally:
        worker.stop()
        clean.close()
