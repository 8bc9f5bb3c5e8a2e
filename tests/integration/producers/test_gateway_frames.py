"""``PUT /v1/frames`` on a real gateway process: consent from Kafka, keys from
ClickHouse, OCR redaction in its worker pool, the S3 frame store on S3Proxy;
bad input refused with a 4xx and never stored; erasure deletes the frames."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import load_keyset
from backends.erasure import erase
from backends.frame_store import S3FrameStore, open_frame_store
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import Settings, child_env, replace
from privacy.consent import grant
from privacy.frame_corpus import render_window
from privacy.frame_sealing import open_frame
from privacy.frames import decode_frame, ocr_words
from producers.agent.frames import FrameUploader
from producers.gateway.auth import DeviceIdentity, TokenFile
from sinks.migrate import migrate
from tests.harness import free_port
from tests.integration.producers.gateway_fixtures import (
    GatewayProcess,
    Reply,
    envelope,
    start_gateway,
)
from tests.integration.s3proxy import S3Server, s3_server

__all__ = ["s3_server"]

MASTER = bytes(range(7, 39))
SECRET = "Tr0ub4dorX99"
MAX_FRAME = 400_000


@pytest.fixture
def private(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = replace(
        settings,
        home=tmp_path / "home",
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"frames-{unique}.", "partitions": 2},
        clickhouse={"database": f"candor_frames_{unique}"},
    )
    create_topics(s)
    migrate(s)
    now = time.time_ns() // 1000
    grant_many(
        s,
        [
            grant(
                None,
                ["activity_metadata", "screen_frames", "training_use"],
                "test",
                now,
                subject_id="alice",
                org_id="org-1",
            ),
            grant(
                None,
                ["activity_metadata", "keystroke_content"],
                "test",
                now,
                subject_id="bob",
                org_id="org-1",
            ),
        ],
        actor="test",
    )
    yield s
    admin = connect(s, database="")
    admin.command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")
    admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


def _frame(title: str = "settings.env - editor") -> bytes:
    image = Image.new("RGB", (900, 520), (40, 90, 140))
    render_window(
        image,
        (20, 20, 880, 500),
        title,
        [
            "# billing service",
            f"DB_PASSWORD={SECRET}",
            "timeout = 30",
            "Review the onboarding checklist",
        ],
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _put(gateway: GatewayProcess, digest: str, body: bytes, token: str | None) -> Reply:
    headers = {"Content-Type": "image/png"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return gateway.request("PUT", f"/v1/frames/{digest}", body, headers)


def test_frames_are_redacted_sealed_stored_and_erased(
    private: Settings, s3_server: S3Server, tmp_path: Path, unique: str
) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    alice = tokens.add(DeviceIdentity("desk-a", "alice", "org-1"))
    bob = tokens.add(DeviceIdentity("desk-b", "bob", "org-1"))
    bucket = f"frames-{unique}"
    private = replace(private, frames=s3_server.frame_settings(bucket))
    env = {
        **child_env(private, dict(os.environ)),
        **s3_server.env(bucket),
        "CANDOR_FRAMES__GATEWAY": "true",
        "CANDOR_FRAMES__OCR_WORKERS": "1",
        "CANDOR_FRAMES__MAX_FRAME_BYTES": str(MAX_FRAME),
    }
    gateway = start_gateway(
        private.kafka.bootstrap,
        private.kafka.topic("capture.events"),
        tmp_path / "tokens.json",
        free_port(),
        env=env,
        entry="candor.cli",
        timeout_s=90,
        stderr=subprocess.PIPE,
    )
    try:
        frame = _frame()
        digest = hashlib.sha256(frame).hexdigest()
        store = open_frame_store(private.frames, private.home)
        assert isinstance(store, S3FrameStore)

        refusals = {
            "no token": (_put(gateway, digest, frame, None), 401, "missing_token"),
            "no consent": (_put(gateway, digest, frame, bob), 403, "no_consent"),
            "bad ref": (_put(gateway, "not-a-hash", frame, alice), 400, "invalid_ref"),
            "mismatch": (
                _put(gateway, hashlib.sha256(b"x").hexdigest(), frame, alice),
                400,
                "hash_mismatch",
            ),
        }
        big = os.urandom(MAX_FRAME + 1)
        refusals["oversized"] = (
            _put(gateway, hashlib.sha256(big).hexdigest(), big, alice),
            413,
            "frame_too_large",
        )
        corrupt = b"\x89PNG\r\n\x1a\n" + os.urandom(4000)
        refusals["corrupt"] = (
            _put(gateway, hashlib.sha256(corrupt).hexdigest(), corrupt, alice),
            400,
            "corrupt_frame",
        )
        for name, (reply, status, reason) in refusals.items():
            assert (reply.status, reply.json()["error"]) == (status, reason), name
        assert store.list("alice") == [] and store.list("bob") == []

        stored = _put(gateway, digest, frame, alice)
        assert stored.status == 201, stored.body
        assert stored.json()["redactions"].get("password", 0) >= 1
        again = _put(gateway, digest, frame, alice)
        assert (again.status, again.json()["stored"]) == (200, False)
        assert store.list("alice") == [digest] and store.list("bob") == []

        blob = store.get("alice", digest)
        assert frame not in blob and SECRET.encode() not in blob
        opened = open_frame(blob, load_keyset(connect(private), MASTER), "alice", digest)
        assert opened.header.trail == stored.json()["redactions"]
        read = " ".join(w.text for w in ocr_words(decode_frame(opened.data)))
        assert SECRET not in read and "onboarding" in read

        events = gateway.request(
            "POST",
            "/v1/events",
            json.dumps({"events": [envelope("desk-a", "alice", "org-1")]}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {alice}"},
        )
        assert events.status == 200, events.body

        # The agent's uploader: a stored frame leaves the outbox, a refused one too.
        outbox = tmp_path / "outbox"
        outbox.mkdir()
        second = _frame(title="notes - editor")
        second_digest = hashlib.sha256(second).hexdigest()
        (outbox / f"{second_digest}.png").write_bytes(second)
        (outbox / f"{hashlib.sha256(corrupt).hexdigest()}.png").write_bytes(corrupt)
        uploader = FrameUploader(outbox, gateway.url, alice)
        assert uploader.upload_all() == 2
        assert (uploader.uploaded, uploader.refused) == (1, 1)
        assert list(outbox.iterdir()) == []
        assert store.list("alice") == sorted([digest, second_digest])
    finally:
        gateway.stop()

    receipt = erase(private, "alice", settle_s=0)
    assert receipt.frames_deleted == 2
    assert store.list("alice") == []
