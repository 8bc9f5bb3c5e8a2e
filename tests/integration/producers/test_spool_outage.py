"""The disk spool against a real broker outage, on a broker of our own.

Stopping the private broker mid-stream must lose nothing: events captured
while it is down wait in the spool and reach Kafka after it is back. The
spool replays at least once, so duplicates may appear; they carry the same
event_id, and the tests count distinct event_ids (and report the raw count).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from candor.settings import KafkaSettings, Settings
from producers.sdk.client import CaptureClient
from producers.simulator.simulator import Simulator
from tests.harness import REPO
from tests.integration.producers.broker import PrivateBroker, capture_events, make_topic, read_topic

START_TS = 1_760_000_000_000_000


@pytest.fixture
def broker(private_broker: PrivateBroker) -> Iterator[PrivateBroker]:
    """The private broker, running again after the test whatever happened."""
    yield private_broker
    private_broker.start()  # a no-op when it runs


def _topic(broker: PrivateBroker, name: str) -> str:
    return make_topic(Settings(kafka=KafkaSettings(bootstrap=broker.bootstrap)), name)


def test_events_captured_during_a_broker_outage_arrive_after_it(
    broker: PrivateBroker,
    tmp_path: Path,
    unique: str,
    record_property: Callable[[str, object], None],
) -> None:
    topic = _topic(broker, f"it.spool.{unique}")
    simulator = Simulator(people=5, seed=11, start_ts=START_TS)
    events = list(simulator.events(900))[:3000]
    before, during, after = events[:1000], events[1000:2000], events[2000:]
    client = CaptureClient(
        broker.bootstrap,
        spool_dir=tmp_path / "spool",
        org_id="org-sim",
        subject_id="s",
        device_id="d",
        topic=topic,
        message_timeout_ms=3000,
        retry_backoff_s=0.5,
    )
    try:
        for event in before:
            client.publish(event)
        assert client.flush(30) == 0

        broker.stop()
        for i, event in enumerate(during):
            client.publish(event)
            if i % 100 == 0:
                client.poll(0.05)
        deadline = time.monotonic() + 30
        while (client.open_events or client.spool_depth < client.pending) and (
            time.monotonic() < deadline
        ):
            client.poll(0.1)
        spooled = client.spool_depth
        # Every batch captured while the broker is down waits on disk, none in memory.
        assert spooled > 0 and spooled == client.pending and client.open_events == 0

        broker.start()
        for event in after:
            client.publish(event)
        assert client.flush(120) == 0
        assert client.spool_depth == 0
    finally:
        client.close(timeout=5)

    records = read_topic(broker.bootstrap, topic, want=1)
    delivered = capture_events(records)
    ids = Counter(event["event_id"] for _, event in delivered)
    record_property("raw_events", len(delivered))
    record_property("duplicates", len(delivered) - len(ids))
    print(
        f"\nspool outage: sent {len(events)}, spooled {spooled} batches, {len(records)}"
        f" records, raw events {len(delivered)}, distinct {len(ids)}"
    )
    assert set(ids) == {event["event_id"] for event in events}
    assert len(delivered) >= len(events)


def test_a_client_killed_with_a_full_spool_delivers_it_after_restart(
    broker: PrivateBroker, tmp_path: Path, unique: str
) -> None:
    topic = _topic(broker, f"it.spool.kill.{unique}")
    spool_dir, ids_file = tmp_path / "spool", tmp_path / "ids.json"
    broker.stop()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.producers.spool_child",
            "spool",
            broker.bootstrap,
            topic,
            str(spool_dir),
            "500",
            str(ids_file),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "SPOOLED"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    ids = json.loads(ids_file.read_text())

    broker.start()
    drained = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.producers.spool_child",
            "drain",
            broker.bootstrap,
            topic,
            str(spool_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert drained.returncode == 0, drained.stdout + drained.stderr
    assert "left 0" in drained.stdout
    records = read_topic(broker.bootstrap, topic, want=1)
    got = Counter(event["event_id"] for _, event in capture_events(records))
    assert set(got) == set(ids)
