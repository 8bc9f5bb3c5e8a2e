"""CaptureClient over an in-memory transport: what a capture call publishes, how
events are batched per device, and what survives a restart. (Its Kafka side is
integration-tested.)"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from producers.sdk.client import DEFAULT_LINGER_MS, CaptureClient
from producers.sdk.errors import ClientClosed, EnvelopeError, SpoolFull, SpoolLocked
from producers.sdk.spool import Spool
from tests.unit.producers.producers_fakes import FakeBroker, FakeClock

APP = {"app_name": "code", "window_title": "main.py", "url_host": None}
KEY: dict[str, Any] = {
    "type": "KeyInput",
    "key": None,
    "text": "hi",
    "modifiers": [],
    "is_secure_field": False,
    "count": 2,
}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True).encode()


def encode_batch(header: Mapping[str, Any], events: Sequence[bytes]) -> bytes:
    return json.dumps({"header": dict(header), "events": [json.loads(e) for e in events]}).encode()


def client(tmp_path: Path, broker: FakeBroker, **options: Any) -> CaptureClient:
    return CaptureClient(
        "unused:9092",
        spool_dir=tmp_path / "spool",
        org_id="org-1",
        subject_id="subj-1",
        device_id="dev-1",
        registry=CollectorRegistry(),
        spool_fsync="never",
        retry_backoff_s=0.0,
        transport_factory=broker.transport,
        encoder=encode,
        batch_encoder=encode_batch,
        **options,
    )


def batches(broker: FakeBroker) -> list[dict[str, Any]]:
    return [json.loads(value) for value in broker.values]


def published(broker: FakeBroker) -> list[dict[str, Any]]:
    """Every event that reached the topic, in record order."""
    return [event for batch in batches(broker) for event in batch["events"]]


def test_capture_publishes_an_envelope_keyed_by_device(tmp_path: Path) -> None:
    broker = FakeBroker()
    with client(tmp_path, broker) as capture:
        event_id = capture.capture(KEY, APP, ts=42)
        assert capture.flush(1.0) == 0
    ((key, _value),) = broker.delivered
    (event,) = published(broker)
    (batch,) = batches(broker)
    assert batch["header"]["device_id"] == "dev-1"
    assert key == b"dev-1"
    assert (event["event_id"], event["ts"], event["payload"], event["app"]) == (
        event_id,
        42,
        KEY,
        APP,
    )


def test_seq_and_order_survive_a_restart_while_the_broker_is_down(tmp_path: Path) -> None:
    broker = FakeBroker(mode="hold")
    first = client(tmp_path, broker)
    ids = [first.capture(KEY, APP) for _ in range(3)]
    assert first.close(0.0) == 1  # undelivered at close: one batch of three, in the spool
    broker.mode = "up"
    with client(tmp_path, broker) as second:
        ids.append(second.capture(KEY, APP))
        assert second.flush(1.0) == 0
    events = published(broker)
    assert [e["event_id"] for e in events] == ids
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))


def test_a_closed_client_refuses_captures_and_close_is_idempotent(tmp_path: Path) -> None:
    capture = client(tmp_path, FakeBroker())
    assert capture.close() == 0
    assert capture.close() == 0
    with pytest.raises(ClientClosed):
        capture.capture(KEY, APP)


def test_two_clients_cannot_share_a_spool_directory(tmp_path: Path) -> None:
    broker = FakeBroker()
    with client(tmp_path, broker), pytest.raises(SpoolLocked):
        client(tmp_path, broker)


def test_a_payload_without_type_is_refused_before_publishing(tmp_path: Path) -> None:
    broker = FakeBroker()
    with client(tmp_path, broker) as capture:
        with pytest.raises(EnvelopeError):
            capture.capture({"text": "x"}, APP)
        assert capture.pending == 0


def test_by_default_events_are_encoded_with_the_shared_codec(tmp_path: Path) -> None:
    from schemas.batch import decode_capture

    broker = FakeBroker()
    with CaptureClient(
        "unused:9092",
        spool_dir=tmp_path / "spool",
        org_id="org-1",
        subject_id="subj-1",
        device_id="dev-1",
        registry=CollectorRegistry(),
        transport_factory=broker.transport,
        client_version="3.1.0",
    ) as capture:
        ids = [capture.capture(KEY, APP) for _ in range(3)]
        assert capture.flush(1.0) == 0
    (record,) = [decode_capture(value) for value in broker.values]
    assert [e["event_id"] for e in record.events] == ids
    assert record.rejected == []
    assert [e["payload"] for e in record.events] == [KEY] * 3
    header = record.header
    assert (header.device_id, header.subject_id, header.client_version) == (
        "dev-1",
        "subj-1",
        "3.1.0",
    )
    assert header.last_seq - header.first_seq == 2


def test_events_wait_for_their_linger_and_leave_together(tmp_path: Path) -> None:
    broker, clock = FakeBroker(), FakeClock()
    with client(tmp_path, broker, monotonic=clock) as capture:
        ids = [capture.capture(KEY, APP) for _ in range(4)]
        clock.advance(DEFAULT_LINGER_MS / 1000 - 0.01)
        capture.poll(0)
        assert broker.delivered == [] and capture.open_events == 4
        clock.advance(0.02)
        capture.poll(0)
        capture.poll(0)  # the fake delivers on the poll after the produce
        assert capture.open_events == 0
        (batch,) = batches(broker)
        assert [e["event_id"] for e in batch["events"]] == ids
        header = batch["header"]
        assert (header["first_seq"], header["last_seq"]) == (
            batch["events"][0]["seq"],
            batch["events"][-1]["seq"],
        )


def test_a_capture_after_the_linger_sends_the_lingering_batch(tmp_path: Path) -> None:
    broker, clock = FakeBroker(), FakeClock()
    with client(tmp_path, broker, monotonic=clock, linger_ms=50) as capture:
        capture.capture(KEY, APP)
        clock.advance(0.06)
        capture.capture(KEY, APP)  # joins the old batch, which is past its linger
        capture.poll(0)
        assert [len(b["events"]) for b in batches(broker)] == [2]


def test_a_batch_never_exceeds_its_event_limit(tmp_path: Path) -> None:
    broker = FakeBroker()
    with client(tmp_path, broker, batch_max_events=4) as capture:
        ids = [capture.capture(KEY, APP) for _ in range(10)]
        assert capture.flush(1.0) == 0
    assert [len(b["events"]) for b in batches(broker)] == [4, 4, 2]
    assert [e["event_id"] for e in published(broker)] == ids


def test_a_batch_never_exceeds_its_byte_limit(tmp_path: Path) -> None:
    broker = FakeBroker()
    limit = 1000  # an encoded event is ~330 bytes here: three fit, four do not
    with client(tmp_path, broker, batch_max_bytes=limit) as capture:
        for _ in range(9):
            capture.capture(KEY, APP)
        assert capture.flush(1.0) == 0
    sizes = [sum(len(encode(e)) for e in batch["events"]) for batch in batches(broker)]
    assert max(sizes) <= limit
    assert len(published(broker)) == 9 and len(sizes) >= 3


def test_batches_are_per_device_and_keyed_by_it(tmp_path: Path) -> None:
    broker = FakeBroker()
    events = []
    with client(tmp_path, broker) as capture:
        for i in range(6):
            device = f"dev-{i % 3}"
            event = {**_envelope(i), "device_id": device}
            events.append(event)
            capture.publish(event)
        assert capture.flush(1.0) == 0
    for key, value in broker.delivered:
        batch = json.loads(value)
        assert key is not None
        assert {e["device_id"] for e in batch["events"]} == {key.decode()}
        assert batch["header"]["device_id"] == key.decode()
    assert sorted(e["event_id"] for e in published(broker)) == sorted(e["event_id"] for e in events)
    assert len(broker.delivered) == 3


def test_an_event_whose_seq_does_not_follow_starts_a_new_batch(tmp_path: Path) -> None:
    broker = FakeBroker()
    with client(tmp_path, broker) as capture:
        for seq in (5, 6, 6, 3, 4):
            capture.publish({**_envelope(seq), "seq": seq})
        assert capture.flush(1.0) == 0
    assert [[e["seq"] for e in b["events"]] for b in batches(broker)] == [[5, 6], [6], [3, 4]]


def test_spooled_batches_replay_unchanged_after_a_restart(tmp_path: Path) -> None:
    broker = FakeBroker(mode="hold")
    first = client(tmp_path, broker, batch_max_events=3)
    ids = [first.capture(KEY, APP) for _ in range(7)]
    assert first.close(0.0) == 3
    with Spool(tmp_path / "spool", fsync="never") as spool:
        held = [record.value for _position, record in spool.replay(None)]
    broker.mode = "up"
    with client(tmp_path, broker) as second:
        assert second.spool_depth == 3
        assert second.flush(1.0) == 0
    assert [e["event_id"] for e in published(broker)] == ids
    assert broker.values == held  # byte for byte, batch ids included
    assert len({b["header"]["batch_id"] for b in batches(broker)}) == 3


def test_close_sends_what_is_still_open(tmp_path: Path) -> None:
    broker, clock = FakeBroker(), FakeClock()
    capture = client(tmp_path, broker, monotonic=clock, linger_ms=10_000)
    ids = [capture.capture(KEY, APP) for _ in range(5)]
    assert capture.pending == 1
    assert capture.close(1.0) == 0
    assert [e["event_id"] for e in published(broker)] == ids


def test_a_full_spool_refuses_the_event_that_does_not_fit_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    broker = FakeBroker(mode="timeout")
    capture = client(tmp_path, broker, batch_max_events=2, spool_max_bytes=1200)
    capture.capture(KEY, APP)
    capture.capture(KEY, APP)  # the first batch fails and is spooled: the spool is nearly full
    assert capture.spool_depth == 1
    capture.capture(KEY, APP)
    with pytest.raises(SpoolFull):
        capture.capture(KEY, APP)  # it would close a second batch the spool cannot hold
    assert capture.open_events == 1  # the event before it is still open, the refused one not
    broker.mode = "up"
    assert capture.flush(1.0) == 0
    assert len(published(broker)) == 3
    capture.close(0.0)


def _envelope(i: int) -> dict[str, Any]:
    return {
        "event_id": f"00000000-0000-4000-8000-{i:012d}",
        "org_id": "org-1",
        "subject_id": "subj-1",
        "device_id": "dev-1",
        "seq": i,
        "ts": 1_000 + i,
        "received_ts": None,
        "app": APP,
        "payload": KEY,
        "redactions": [],
        "consent_version": None,
    }
