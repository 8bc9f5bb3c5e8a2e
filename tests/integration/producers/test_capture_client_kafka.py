"""CaptureClient against real Kafka: every simulated event arrives exactly
once, decodable, in per-device seq order, in device batches."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from candor.settings import Settings
from producers.sdk.client import CaptureClient
from producers.simulator.simulator import Simulator
from tests.integration.producers.broker import capture_events, read_topic

START_TS = 1_760_000_000_000_000


def test_simulated_events_arrive_once_each_in_device_order(
    settings: Settings, topic: str, tmp_path: Path
) -> None:
    simulator = Simulator(people=20, seed=7, start_ts=START_TS)
    events = list(simulator.events(300))
    assert len(events) > 3000
    first = simulator.devices[0]
    with CaptureClient(
        settings.kafka.bootstrap,
        spool_dir=tmp_path / "spool",
        org_id="org-sim",
        subject_id=first.subject_id,
        device_id=first.device_id,
        topic=topic,
    ) as client:
        for event in events:
            client.publish(event)
        assert client.flush(60) == 0
        assert client.spool_depth == 0

    records = read_topic(settings.kafka.bootstrap, topic, want=1)
    decoded = capture_events(records)
    counts = Counter(event["event_id"] for _, event in decoded)
    assert len(decoded) == len(events)
    assert len(records) < len(events) / 5  # batched: far fewer records than events
    assert set(counts) == {event["event_id"] for event in events}
    assert max(counts.values()) == 1
    # Keyed by device: one partition per device, seq strictly increasing in offset order.
    by_device: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for record, event in decoded:
        assert record.key == event["device_id"].encode()
        by_device[event["device_id"]].append((record.partition, record.offset, event["seq"]))
    assert len(by_device) == 20
    for rows in by_device.values():
        assert len({partition for partition, _, _ in rows}) == 1
        # A stable sort by offset: events of one batch keep their order in it.
        seqs = [seq for _, _, seq in sorted(rows, key=lambda row: row[:2])]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # What went in is what came out, field for field (newer schema fields default).
    sent = {event["event_id"]: event for event in events}
    for _, event in decoded[:200]:
        original = sent[event["event_id"]]
        assert {name: event[name] for name in original} == original


def test_capture_stamps_envelopes_with_the_client_identity(
    settings: Settings, topic: str, tmp_path: Path
) -> None:
    app = {"app_name": "xterm", "window_title": "bash", "url_host": None}
    with CaptureClient(
        settings.kafka.bootstrap,
        spool_dir=tmp_path / "spool",
        org_id="org-1",
        subject_id="subject-1",
        device_id="device-1",
        topic=topic,
    ) as client:
        ids = [client.capture({"type": "Scroll", "dx": 0, "dy": i}, app) for i in range(50)]
        assert client.flush(30) == 0
    records = read_topic(settings.kafka.bootstrap, topic, want=1)
    events = [event for _, event in capture_events(records)]
    assert [e["event_id"] for e in events] == ids
    assert len(records) == 1  # flushed together: one device batch
    assert {(e["org_id"], e["subject_id"], e["device_id"]) for e in events} == {
        ("org-1", "subject-1", "device-1")
    }
    assert [e["payload"]["dy"] for e in events] == list(range(50))
