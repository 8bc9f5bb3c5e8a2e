"""The frame route of a real `candor gateway`: described in the served OpenAPI
document, rate-limited per token (429 with Retry-After, nothing stored), and fed
by `candor simulate --frames-per-person`."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from backends.frame_store import open_frame_store
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import Settings, child_env, replace
from privacy.consent import grant
from privacy.frame_corpus import render_window
from producers.gateway.auth import DeviceIdentity, TokenFile
from producers.simulator.simulator import Simulator
from sinks.migrate import migrate
from tests.harness import REPO, free_port
from tests.integration.producers.gateway_fixtures import GatewayProcess, start_gateway

MASTER = bytes(range(9, 41))
SIM_SEED = 31


@pytest.fixture
def private(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = replace(
        settings,
        home=tmp_path / "home",
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"frame-limits-{unique}.", "partitions": 1},
        clickhouse={"database": f"candor_frame_limits_{unique}"},
    )
    create_topics(s)
    migrate(s)
    now = time.time_ns() // 1000
    simulated = Simulator(2, SIM_SEED, 0)
    grant_many(
        s,
        [
            grant(
                None,
                ["activity_metadata", "screen_frames"],
                "test",
                now,
                subject_id="carol",
                org_id="org-1",
            ),
            grant(
                None,
                ["activity_metadata", "screen_frames"],
                "test",
                now,
                subject_id=simulated.devices[0].subject_id,
                org_id=simulated.org_id,
            ),
        ],
        actor="test",
    )
    yield s
    admin = connect(s, database="")
    admin.command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")
    admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


def _frame(line: str) -> bytes:
    image = Image.new("RGB", (640, 360), (40, 90, 140))
    render_window(image, (20, 20, 620, 340), "notes - editor", [line, "timeout = 30"])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def gateway(private: Settings, tmp_path: Path) -> Iterator[tuple[GatewayProcess, TokenFile]]:
    tokens = TokenFile(tmp_path / "tokens.json")
    env = {
        **child_env(private, dict(os.environ)),
        "CANDOR_FRAMES__GATEWAY": "true",
        "CANDOR_FRAMES__OCR_WORKERS": "1",
        "CANDOR_FRAMES__FRAMES_PER_TOKEN_S": "0.001",
        "CANDOR_FRAMES__FRAME_BURST_PER_TOKEN": "1",
    }
    tokens.add(DeviceIdentity("desk-0", "carol", "org-1"))  # the file exists before start
    gw = start_gateway(
        private.kafka.bootstrap,
        private.kafka.topic("capture.events"),
        tmp_path / "tokens.json",
        free_port(),
        env=env,
        entry="candor.cli",
        timeout_s=90,
        stderr=subprocess.PIPE,
    )
    yield gw, tokens
    gw.stop()


def _put(gw: GatewayProcess, token: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    reply = gw.request(
        "PUT",
        f"/v1/frames/{hashlib.sha256(body).hexdigest()}",
        body,
        {"Content-Type": "image/png", "Authorization": f"Bearer {token}"},
    )
    return reply.status, reply.headers, reply.body


def test_served_openapi_document_describes_frames(
    gateway: tuple[GatewayProcess, TokenFile],
) -> None:
    gw, _ = gateway
    doc = gw.request("GET", "/openapi.json").json()
    put = doc["paths"]["/v1/frames/{sha256}"]["put"]
    assert set(put["requestBody"]["content"]) == {"image/png", "image/webp"}
    assert {"200", "201", "400", "401", "403", "413", "429", "503"} <= set(put["responses"])
    assert "Retry-After" in put["responses"]["429"]["headers"]
    assert "/v1/events" in doc["paths"] and "FrameResult" in doc["components"]["schemas"]


def test_frames_are_rate_limited_per_token_and_nothing_is_stored(
    gateway: tuple[GatewayProcess, TokenFile], private: Settings
) -> None:
    gw, tokens = gateway
    first = tokens.add(DeviceIdentity("desk-1", "carol", "org-1"))
    second = tokens.add(DeviceIdentity("desk-2", "carol", "org-1"))
    a, b, c = _frame("first frame"), _frame("second frame"), _frame("third frame")
    store = open_frame_store(private.frames, private.home)

    status, _, body = _put(gw, first, a)
    assert status == 201, body
    status, headers, body = _put(gw, first, b)  # the burst of 1 is spent
    assert status == 429, body
    assert b'"rate_limited"' in body and int(headers["Retry-After"]) >= 1
    assert store.list("carol") == [hashlib.sha256(a).hexdigest()]  # b was not stored
    # another token of the same subject has its own budget
    status, _, body = _put(gw, second, c)
    assert status == 201, body
    assert sorted(store.list("carol")) == sorted(hashlib.sha256(x).hexdigest() for x in (a, c))
    metrics = gw.request("GET", "/metrics").body.decode()
    assert 'candor_gateway_frames_total{outcome="rate_limited"} 1.0' in metrics


def test_simulate_puts_its_frames_through_the_gateway(
    gateway: tuple[GatewayProcess, TokenFile], private: Settings, tmp_path: Path
) -> None:
    """Two simulated people, the first consenting to screen_frames: one frame each
    is rendered and put; the first's is stored, the second's refused (no consent)."""
    gw, _ = gateway
    env = child_env(private, dict(os.environ))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "candor.cli",
            "simulate",
            "--people",
            "2",
            "--rate",
            "200",
            "--duration",
            "3",
            "--seed",
            str(SIM_SEED),
            "--frames-per-person",
            "1",
            "--gateway-url",
            gw.url,
            "--token-file",
            str(tmp_path / "tokens.json"),
            "--topic",
            private.kafka.topic("capture.events"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "frames: 2 rendered, 1 stored, 0 already there, refused {'no_consent': 1}" in proc.stdout
    ), proc.stdout
    devices = Simulator(2, SIM_SEED, 0).devices
    store = open_frame_store(private.frames, private.home)
    assert len(store.list(devices[0].subject_id)) == 1
    assert store.list(devices[1].subject_id) == []
