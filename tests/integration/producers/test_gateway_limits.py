"""The gateway's HTTP answers to limits and Kafka trouble, in process with a
fake Kafka sender (loopback HTTP only): 429 + Retry-After, 413 for bodies
too large whether announced or streamed, 415, 503 + Retry-After when Kafka
does not acknowledge, and nothing counted as accepted that was not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from producers.gateway.auth import DeviceIdentity, TokenFile
from producers.gateway.batch import Record
from producers.gateway.errors import Unavailable
from producers.gateway.server import Gateway, GatewayConfig, build_app
from tests.integration.producers.gateway_fixtures import envelope, json_batch


class FakeSender:
    """Acknowledges (or, with `fail`, refuses) every batch; remembers what it got."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[Record] = []

    async def send(self, records: Sequence[Record]) -> None:
        if self.fail:
            raise Unavailable("msg_timed_out", "no ack")
        self.sent.extend(records)

    def close(self, timeout: float = 10.0) -> int:
        return 0


Scenario = Callable[[TestClient[Any, Any], str, FakeSender], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, *, fail: bool = False, **config: Any) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    token = tokens.add(DeviceIdentity("dev-a", "sub-a", "org-a"))
    sender = FakeSender(fail)
    gateway = Gateway(GatewayConfig(**config), tokens, CollectorRegistry())

    async def go() -> None:
        async with TestClient(TestServer(build_app(gateway, lambda: sender))) as client:
            await scenario(client, token, sender)

    asyncio.run(go())


def auth(token: str, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


def test_a_device_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any], token: str, sender: FakeSender) -> None:
        batch = json_batch(*[envelope(seq=i) for i in range(8)])
        first = await client.post("/v1/events", data=batch, headers=auth(token))
        assert first.status == 200
        second = await client.post("/v1/events", data=batch, headers=auth(token))
        assert second.status == 429
        assert int(second.headers["Retry-After"]) >= 1
        assert (await second.json())["error"] == "rate_limited"
        assert len(sender.sent) == 8

    run(tmp_path, scenario, max_events=10, rate_per_device=1.0, burst_per_device=10.0)


@pytest.mark.parametrize("chunked", [False, True])
def test_bodies_over_the_limit_get_413(tmp_path: Path, chunked: bool) -> None:
    async def scenario(client: TestClient[Any, Any], token: str, sender: FakeSender) -> None:
        big = json_batch(
            envelope(app={"app_name": "x" * 5000, "window_title": None, "url_host": None})
        )

        async def stream() -> Any:
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        data: Any = stream() if chunked else big
        reply = await client.post("/v1/events", data=data, headers=auth(token))
        assert reply.status == 413
        assert (await reply.json())["error"] == "body_too_large"
        assert sender.sent == []

    run(tmp_path, scenario, max_body_bytes=4096)


def test_kafka_not_acknowledging_gets_503_and_counts_unconfirmed(tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any], token: str, sender: FakeSender) -> None:
        reply = await client.post("/v1/events", data=json_batch(envelope()), headers=auth(token))
        assert reply.status == 503 and reply.headers["Retry-After"] == "1"
        assert (await reply.json())["error"] == "msg_timed_out"
        metrics = await (await client.get("/metrics")).text()
        assert 'candor_gateway_events_total{outcome="unconfirmed"} 1.0' in metrics
        assert 'outcome="accepted"' not in metrics

    run(tmp_path, scenario, fail=True)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("text/plain", 415), ("application/xml", 415), ("application/vnd.candor.avro-batch", 400)],
)
def test_other_media_types(tmp_path: Path, content_type: str, status: int) -> None:
    async def scenario(client: TestClient[Any, Any], token: str, sender: FakeSender) -> None:
        reply = await client.post(
            "/v1/events", data=json_batch(envelope()), headers=auth(token, content_type)
        )
        assert reply.status == status
        assert set(json.loads(await reply.read())) == {"error", "detail"}

    run(tmp_path, scenario)
