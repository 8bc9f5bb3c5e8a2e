"""Per-token limits before parsing, revocation, expiry and token-file reloads,
through the gateway's real HTTP stack (loopback, fake Kafka sender); and a
malformed token file stopping a real gateway process at start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

import producers.gateway.server as gateway_module
from producers.gateway.auth import DeviceIdentity, TokenFile
from producers.gateway.batch import Record
from producers.gateway.server import Gateway, GatewayConfig, build_app
from tests.harness import REPO
from tests.integration.producers.gateway_fixtures import envelope, json_batch

pytestmark = pytest.mark.integration


class AckAll:
    def __init__(self) -> None:
        self.sent: list[Record] = []

    async def send(self, records: Sequence[Record]) -> None:
        self.sent.extend(records)

    def close(self, timeout: float = 10.0) -> int:
        return 0


Scenario = Callable[[TestClient[Any, Any], TokenFile, str, AckAll], Awaitable[None]]


def run(
    tmp_path: Path, scenario: Scenario, identity: DeviceIdentity | None = None, **config: Any
) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    token = tokens.add(identity or DeviceIdentity("dev-a", "sub-a", "org-a"))
    sender = AckAll()
    served = TokenFile(tokens.path)
    served.tokens()  # loaded at start, as run_gateway does
    gateway = Gateway(GatewayConfig(**config), served, CollectorRegistry())

    async def go() -> None:
        async with TestClient(TestServer(build_app(gateway, lambda: sender))) as client:
            await scenario(client, tokens, token, sender)

    asyncio.run(go())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the gateway's body parses (the real parser still runs)."""
    seen: list[int] = []
    real = gateway_module.parse_body  # type: ignore[attr-defined]

    def counting(body: bytes, *args: Any, **kwargs: Any) -> Any:
        seen.append(len(body))
        return real(body, *args, **kwargs)

    monkeypatch.setattr(gateway_module, "parse_body", counting)
    return seen


def test_requests_over_the_token_rate_are_refused_before_parsing(
    tmp_path: Path, parses: list[int]
) -> None:
    junk = b"{" * 60_000  # would cost a parse and a 400 if it got that far

    async def scenario(
        client: TestClient[Any, Any], _t: TokenFile, token: str, sender: AckAll
    ) -> None:
        ok = await client.post("/v1/events", data=json_batch(envelope()), headers=auth(token))
        assert ok.status == 200
        bad = await client.post("/v1/events", data=junk, headers=auth(token))
        assert bad.status == 400  # parsed: within the request rate
        refused = await client.post("/v1/events", data=junk, headers=auth(token))
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error"] == "rate_limited"
        assert len(parses) == 2 and len(sender.sent) == 1

    run(tmp_path, scenario, requests_per_token_s=0.01, request_burst_per_token=2)


@pytest.mark.parametrize("chunked", [False, True])
def test_bytes_over_the_token_byte_rate_are_refused_before_parsing(
    tmp_path: Path, parses: list[int], chunked: bool
) -> None:
    body = json_batch(
        *[
            envelope(seq=i, app={"app_name": "x" * 500, "window_title": None, "url_host": None})
            for i in range(10)
        ]
    )
    assert 6_000 < len(body) < 10_000

    async def scenario(
        client: TestClient[Any, Any], _t: TokenFile, token: str, sender: AckAll
    ) -> None:
        async def stream() -> Any:
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        first = await client.post(
            "/v1/events", data=stream() if chunked else body, headers=auth(token)
        )
        assert first.status == 200
        second = await client.post(
            "/v1/events", data=stream() if chunked else body, headers=auth(token)
        )
        assert second.status == 429
        assert len(parses) == 1 and len(sender.sent) == 10

    run(
        tmp_path,
        scenario,
        max_body_bytes=12_000,
        bytes_per_token_s=1.0,
        byte_burst_per_token=12_000,
    )


def test_revoked_and_expired_tokens_are_refused_by_a_running_gateway(tmp_path: Path) -> None:
    async def scenario(
        client: TestClient[Any, Any], tokens: TokenFile, token: str, sender: AckAll
    ) -> None:
        assert (
            await client.post("/v1/events", data=json_batch(envelope()), headers=auth(token))
        ).status == 200
        assert tokens.revoke(device_id="dev-a") == 1
        st = tokens.path.stat()
        os.utime(tokens.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        refused = await client.post(
            "/v1/events", data=json_batch(envelope(seq=2)), headers=auth(token)
        )
        assert refused.status == 401 and (await refused.json())["error"] == "invalid_token"
        expired = tokens.add(DeviceIdentity("dev-a", "sub-a", "org-a", expires_at=1))
        reply = await client.post(
            "/v1/events", data=json_batch(envelope(seq=3)), headers=auth(expired)
        )
        assert reply.status == 401 and (await reply.json())["error"] == "expired_token"
        assert len(sender.sent) == 1

    run(tmp_path, scenario)


def test_a_malformed_rewrite_keeps_serving_and_counts_a_failure(tmp_path: Path) -> None:
    async def scenario(
        client: TestClient[Any, Any], tokens: TokenFile, token: str, sender: AckAll
    ) -> None:
        tokens.path.write_text('{"truncated": ')
        st = tokens.path.stat()
        os.utime(tokens.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        reply = await client.post("/v1/events", data=json_batch(envelope()), headers=auth(token))
        assert reply.status == 200
        metrics = await (await client.get("/metrics")).text()
        assert "candor_gateway_token_reload_failures_total 1.0" in metrics

    run(tmp_path, scenario)


def test_a_malformed_token_file_stops_the_gateway_at_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text('{"deadbeef": {"device_id": "d"}}')
    done = subprocess.run(
        [sys.executable, "-m", "candor.cli", "gateway", "--port", "0", "--token-file", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CANDOR_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
    )
    assert done.returncode != 0
    assert "token file" in done.stderr and str(path) in done.stderr
