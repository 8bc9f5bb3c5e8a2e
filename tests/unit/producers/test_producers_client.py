"""CaptureClient over an in-memory transport: what a capture call publishes and
what survives a restart. (Its Kafka side is integration-tested.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from producers.client import CaptureClient
from producers.errors import ClientClosed, EnvelopeError, SpoolLocked
from tests.unit.producers.producers_fakes import FakeBroker

APP = {"app_name": "code", "window_title": "main.py", "url_host": None}
KEY = {
    "type": "KeyInput",
    "key": None,
    "text": "hi",
    "modifiers": [],
    "is_secure_field": False,
    "count": 2,
}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True).encode()


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
        **options,
    )


def published(broker: FakeBroker) -> list[dict[str, Any]]:
    return [json.loads(value) for value in broker.values]


def test_capture_publishes_an_envelope_keyed_by_device(tmp_path: Path) -> None:
    broker = FakeBroker()
    with client(tmp_path, broker) as capture:
        event_id = capture.capture(KEY, APP, ts=42)
        assert capture.flush(1.0) == 0
    ((key, _value),) = broker.delivered
    (event,) = published(broker)
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
    assert first.close(0.0) == 3  # undelivered at close: in the spool
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
    from schemas.codec import decode_event

    broker = FakeBroker()
    with CaptureClient(
        "unused:9092",
        spool_dir=tmp_path / "spool",
        org_id="org-1",
        subject_id="subj-1",
        device_id="dev-1",
        registry=CollectorRegistry(),
        transport_factory=broker.transport,
    ) as capture:
        event_id = capture.capture(KEY, APP)
        assert capture.flush(1.0) == 0
    (event,) = [decode_event(value) for value in broker.values]
    assert (event["event_id"], event["payload"], event["device_id"]) == (event_id, KEY, "dev-1")
