"""Bad device batches through a real `candor worker` (issue 12, "Bad input"):
a batch cut off in its fourth event, a batch over the byte limit, and a batch
holding an event of another subject and a repeated seq each keep their good
events (in ClickHouse, through capture.clean and the sinks), and the DLQ
holds each loss with its typed reason."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import KeyView
from candor.settings import Settings
from schemas import codec
from schemas.batch import DEVICE_BATCH, MAX_BATCH_BYTES, batch_header
from tests.harness import CandorProcess, SinkThreads, free_port, wait_until
from tests.integration.privacy.pipeline import MASTER, Cli

pytestmark = pytest.mark.integration

ORG = "org-bad"
SUBJECT = "bad-batch-person"
#: The records over MAX_BATCH_BYTES this test writes fit in these
#: (capture.events is given this record limit, the producer the same).
RECORD_LIMIT = 4 * 1024 * 1024


@pytest.fixture
def all_sinks(private_settings: Settings) -> Iterator[KeyView]:
    running = SinkThreads(private_settings, MASTER, "test-sink", dead_letters=True)
    yield running.view
    running.close()


def event(device: str, seq: int, **over: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "org_id": ORG,
        "subject_id": SUBJECT,
        "device_id": device,
        "seq": seq,
        "ts": time.time_ns() // 1000 - 5_000_000,
        "received_ts": None,
        "app": {"app_name": "Terminal", "window_title": None, "url_host": None},
        "payload": {"type": "Scroll", "dx": 0, "dy": seq},
        "redactions": [],
        "consent_version": None,
        "client_version": "2.0",
        **over,
    }


def as_batch(evs: list[dict[str, Any]], batch_id: str) -> bytes:
    header = batch_header(evs, batch_id=batch_id, sent_ts=time.time_ns() // 1000)
    return codec.encode(DEVICE_BATCH, {**header, "events": evs}, check_domains=False)


def event_end(evs: list[dict[str, Any]], data: bytes, index: int) -> int:
    """The offset just after event ``index`` in ``data`` (a batch of ``evs``)."""
    end = len(data) - 1  # the array's terminating 0
    for e in reversed(evs[index + 1 :]):
        end -= len(codec.encode("CaptureEvent", e, check_domains=False)) - 10
    return end


def allow_large_records(s: Settings) -> None:
    admin = AdminClient(dict(s.kafka.client_config()))
    resource = ConfigResource(
        ResourceType.TOPIC,
        s.kafka.topic("capture.events"),
        incremental_configs=[
            ConfigEntry(
                "max.message.bytes",
                str(RECORD_LIMIT),
                incremental_operation=AlterConfigOpType.SET,
            )
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def landed_ids(s: Settings) -> set[str]:
    rows = connect(s).query("SELECT event_id FROM events FINAL").result_rows
    return {r[0] for r in rows}


def dead_letters(s: Settings) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in connect(s)
        .query(
            "SELECT reason, event_number, headers['batch_id'], headers['lost_from_index'], "
            "headers['lost_count'], headers['lost_seqs'], headers['value_bytes'], length(raw) > 0 "
            "FROM dead_letters FINAL ORDER BY headers['batch_id'], event_number"
        )
        .result_rows
    ]


def test_bad_batches_keep_their_good_events_through_a_real_worker(
    private_settings: Settings,
    cli: Cli,
    all_sinks: KeyView,
    tmp_path: Path,
) -> None:
    s = private_settings
    grant = ["consent", "grant", "--subject", SUBJECT, "--org", ORG]
    assert cli(*grant, "--scopes", "activity_metadata,analytics") == 0
    wait_until(lambda: all_sinks.live(SUBJECT) is not None, 30, "key visible to the sinks")
    allow_large_records(s)

    # cut off inside its fourth event: the first three stand
    cut_evs = [event("dev-cut", seq) for seq in range(1, 6)]
    whole = as_batch(cut_evs, "b-cut")
    cut = whole[: event_end(cut_evs, whole, 2) + 5]
    # over the byte limit from its fourth event on: the first three stand
    big_evs = [event("dev-big", seq) for seq in range(1, 6)]
    big_evs[3]["payload"] = {
        "type": "TerminalCommand",
        "command": "y" * (MAX_BATCH_BYTES + 1000),
        "exit_code": 0,
        "cwd_hash": "c",
    }
    big = as_batch(big_evs, "b-big")
    assert MAX_BATCH_BYTES < len(big) < RECORD_LIMIT
    # another subject's event (index 1) and a repeated seq (index 3): refused alone
    mixed_evs = [event("dev-mix", seq) for seq in (1, 2, 3, 3, 4)]
    mixed_evs[1]["subject_id"] = "somebody-else"
    mixed = as_batch(mixed_evs, "b-mix")

    producer = Producer({**s.kafka.client_config(), "message.max.bytes": RECORD_LIMIT})
    topic = s.kafka.topic("capture.events")
    for key, value in (("dev-cut", cut), ("dev-big", big), ("dev-mix", mixed)):
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    kept = {e["event_id"] for e in cut_evs[:3] + big_evs[:3]}
    kept |= {mixed_evs[i]["event_id"] for i in (0, 2, 4)}
    worker = CandorProcess(
        "worker",
        ["worker", "--metrics-port", str(free_port()), "--app-id", f"{s.kafka.topic_prefix}w"],
        s,
        tmp_path / "logs",
    )
    worker.start()
    try:
        wait_until(
            lambda: len(landed_ids(s)) >= len(kept) and len(dead_letters(s)) >= 4,
            240,
            "the kept events and the dead letters landed",
            alive=lambda: worker.running,
            diag=lambda: f"{landed_ids(s)} {dead_letters(s)}\n{worker.tail()}",
        )
        time.sleep(1.0)  # the sinks' batch age: anything more would have landed too
        assert landed_ids(s) == kept
        # the oversize record is not carried (it would not fit a DLQ record): its size is
        assert dead_letters(s) == [
            ("batch_too_large", 0, "b-big", "3", "2", "4-5", str(len(big)), False),
            ("truncated_batch", 0, "b-cut", "3", "2", "4-5", "", True),
            ("batch_header_mismatch", 2, "b-mix", "", "", "", "", True),
            ("duplicate_seq", 4, "b-mix", "", "", "", "", True),
        ]
    finally:
        assert worker.stop() == 0, worker.tail()
