"""The HTTP gateway: capture events from non-Python clients into Kafka.

``POST /v1/events`` takes a batch from one device (JSON or framed Avro, see
`producers.gateway.batch` and `producers.gateway.framing`), and answers only
after Kafka acknowledged every accepted event (acks=all), so a 200/400 with
``accepted: n`` means durable. The order of checks, each a typed refusal:

1. bearer token (401 missing/invalid/expired) — before the body is read;
2. per-token request and byte rate (429 + Retry-After) — also before the body
   is read or parsed (a body without Content-Length is counted as it streams);
3. body size (413), media type (415), readable batch (400);
4. identity: every event is the token's device, subject and org (403, all or nothing);
5. per-device rate, counted in events (429 + Retry-After);
6. per-event validation (partial: 400 listing the rejected, the rest published);
7. Kafka acknowledgement (503 + Retry-After when it does not come).

TLS: the gateway speaks plain HTTP and binds 127.0.0.1 by default. Bearer
tokens must never cross a network in clear: terminate TLS in front of it (a
load balancer, an ingress, or nginx/Envoy on the same host) and let only that
proxy reach the gateway's port (see privacy/README.md).

Also ``GET /healthz``, ``/metrics`` (Prometheus) and ``/openapi.json``.
Stateless apart from the per-process rate buckets: run as many as needed
behind a load balancer. Bad input never yields a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from producers.gateway.auth import TokenFile, authenticate, bearer_token, hash_token
from producers.gateway.batch import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_EVENTS,
    BatchPlan,
    Record,
    check_identity,
    parse_body,
    plan_batch,
)
from producers.gateway.errors import GatewayRefusal, RateLimited, TooLarge, Unavailable
from producers.gateway.frames import FrameRoutes
from producers.gateway.kafka import AsyncDelivery, gateway_producer_config
from producers.gateway.metrics import GatewayMetrics
from producers.gateway.openapi import openapi_document
from producers.gateway.openapi_frames import with_frame_paths
from producers.gateway.ratelimit import DeviceRateLimiter, TokenLimiter
from producers.gateway.settings import GatewaySettings
from schemas.clock import now_micros
from schemas.topics import Topic

_log = logging.getLogger(__name__)

DEFAULT_TOPIC = Topic.CAPTURE_EVENTS


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Limits and destination of one gateway. `burst` must be >= `max_events`
    so a full batch can pass the rate limit."""

    topic: str = DEFAULT_TOPIC
    max_body_bytes: int = 4 * 1024 * 1024
    max_events: int = DEFAULT_MAX_EVENTS
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    rate_per_device: float = 2_000.0
    burst_per_device: float = 10_000.0
    # Per token, checked before the body is read: requests and body bytes.
    requests_per_token_s: float = 50.0
    request_burst_per_token: float = 200.0
    bytes_per_token_s: float = 8 * 1024 * 1024
    byte_burst_per_token: float = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.burst_per_device < self.max_events:
            raise ValueError("burst_per_device must be >= max_events")
        if self.byte_burst_per_token < self.max_body_bytes:
            raise ValueError("byte_burst_per_token must be >= max_body_bytes")


class Sender(Protocol):
    """What the gateway needs of Kafka: an `AsyncDelivery`, or a fake in tests."""

    async def send(self, records: Sequence[Record]) -> None:
        """Return once every record is acknowledged; raise `Unavailable` otherwise."""

    def close(self, timeout: float = 10.0) -> int:
        """Flush and stop; return the records left unacknowledged. Blocks."""


class Gateway:
    """The request handlers and the state they share. Use `build_app`."""

    def __init__(
        self,
        config: GatewayConfig,
        tokens: TokenFile,
        registry: CollectorRegistry,
        *,
        wall_clock: Callable[[], int] = now_micros,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.registry = registry
        self.metrics = GatewayMetrics.on(registry)
        self.limiter = DeviceRateLimiter(config.rate_per_device, config.burst_per_device)
        self.token_limiter = TokenLimiter(
            config.requests_per_token_s,
            config.request_burst_per_token,
            config.bytes_per_token_s,
            config.byte_burst_per_token,
        )
        tokens.on_reload_error = lambda _message: self.metrics.token_reload_failures.inc()
        self.sender: Sender | None = None
        self.frames: FrameRoutes | None = None  # PUT /v1/frames (producers.gateway.frames)
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._openapi = json.dumps(
            openapi_document(
                max_body_bytes=config.max_body_bytes,
                max_events=config.max_events,
                max_event_bytes=config.max_event_bytes,
            )
        )
        self._openapi_frames: str | None = None

    async def post_events(self, request: web.Request) -> web.Response:
        """``POST /v1/events``; see the module docstring for the answers."""
        started = time.perf_counter()
        try:
            response = await self._publish(request)
        except GatewayRefusal as refusal:
            response = _refusal_response(refusal)
        self.metrics.requests.labels(status=str(response.status)).inc()
        self.metrics.request_seconds.observe(time.perf_counter() - started)
        return response

    async def _publish(self, request: web.Request) -> web.Response:
        now = self._wall_clock()
        token = bearer_token(request.headers.get("Authorization"))
        identity = authenticate(self.tokens.tokens(), token, now)
        token_hash = hash_token(token)
        self.token_limiter.take_request(token_hash, self._monotonic())
        body = await self._read_body(request, token_hash)
        items = parse_body(
            body, request.headers.get("Content-Type"), max_events=self.config.max_events
        )
        try:
            check_identity(items, identity)
        except GatewayRefusal as refusal:
            self.metrics.events.labels(outcome=refusal.reason).inc(len(items))
            raise
        self.limiter.take(identity.device_id, len(items), self._monotonic())
        plan = plan_batch(items, received_ts=now, max_event_bytes=self.config.max_event_bytes)
        if plan.records:
            await self._deliver(plan)
        for rejection in plan.rejected:
            self.metrics.events.labels(outcome=rejection.reason).inc()
        result = {
            "accepted": len(plan.records),
            "rejected": [rejection.to_json() for rejection in plan.rejected],
        }
        return web.json_response(result, status=400 if plan.rejected else 200)

    async def _deliver(self, plan: BatchPlan) -> None:
        if self.sender is None:
            raise Unavailable("unavailable", "the gateway is starting or stopping")
        try:
            await self.sender.send(plan.records)
        except Unavailable:
            self.metrics.events.labels(outcome="unconfirmed").inc(len(plan.records))
            raise
        self.metrics.events.labels(outcome="accepted").inc(len(plan.records))

    async def _read_body(self, request: web.Request, token_hash: str) -> bytes:
        """The body, counted against the token's byte rate before it is read
        (announced length) or chunk by chunk (streamed). Raises `TooLarge`,
        `RateLimited`."""
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge("body_too_large", f"{request.content_length} bytes, at most {limit}")
        announced = request.content_length is not None
        if announced:
            self.token_limiter.take_bytes(
                token_hash, request.content_length or 0, self._monotonic()
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise TooLarge("body_too_large", f"more than {limit} bytes")
            if not announced:
                self.token_limiter.take_bytes(token_hash, len(chunk), self._monotonic())
            chunks.append(chunk)
        return b"".join(chunks)

    async def healthz(self, _request: web.Request) -> web.Response:
        """``GET /healthz``: 200 while serving with a Kafka producer, else 503."""
        if self.sender is None:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics_endpoint(self, _request: web.Request) -> web.Response:
        """``GET /metrics`` in the Prometheus text format."""
        response = web.Response(body=generate_latest(self.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def openapi(self, _request: web.Request) -> web.Response:
        """``GET /openapi.json`` (describing ``PUT /v1/frames`` when that route is on)."""
        if self.frames is not None and self._openapi_frames is None:
            self._openapi_frames = json.dumps(
                with_frame_paths(
                    json.loads(self._openapi),
                    max_frame_bytes=self.frames.max_frame_bytes,
                    frames_per_token_s=self.frames.frames_per_token_s,
                    frame_burst_per_token=self.frames.frame_burst_per_token,
                )
            )
        text = self._openapi if self.frames is None else self._openapi_frames
        return web.Response(text=text, content_type="application/json")


def _refusal_response(refusal: GatewayRefusal) -> web.Response:
    headers = {}
    if isinstance(refusal, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after_s)))
    return web.json_response(
        {"error": refusal.reason, "detail": refusal.detail},
        status=refusal.status,
        headers=headers,
    )


def build_app(
    gateway: Gateway,
    sender_factory: Callable[[], Sender] | None = None,
) -> web.Application:
    """The aiohttp application of `gateway`. `sender_factory` runs inside the
    loop at start-up (None: no Kafka, every publish answers 503)."""
    # The body limit is enforced while streaming in `_read_body`; aiohttp's own
    # limit only applies to request.read()/post(), which the gateway never calls.
    app = web.Application(client_max_size=gateway.config.max_body_bytes)
    app.router.add_post("/v1/events", gateway.post_events)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/metrics", gateway.metrics_endpoint)
    app.router.add_get("/openapi.json", gateway.openapi)
    if gateway.frames is not None:
        gateway.frames.install(app)

    async def start(_app: web.Application) -> None:
        if sender_factory is not None:
            gateway.sender = sender_factory()

    async def stop(_app: web.Application) -> None:
        sender, gateway.sender = gateway.sender, None
        if sender is not None:
            left = await asyncio.get_running_loop().run_in_executor(None, sender.close)
            if left:
                _log.warning("%d events unacknowledged at shutdown", left)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def run_gateway(
    settings: GatewaySettings,
    host: str,
    port: int,
    token_file: Path,
    *,
    config: GatewayConfig | None = None,
    registry: CollectorRegistry | None = None,
    frame_routes: Callable[[TokenFile, CollectorRegistry], FrameRoutes] | None = None,
) -> None:
    """Serve the gateway on `host`:`port` until SIGINT/SIGTERM, publishing to
    `settings.kafka.bootstrap`; with ``PUT /v1/frames`` when `frame_routes`
    (composed by ``candor.frame_gateway``) is given. Blocks. Raises ValueError
    for a malformed token file (checked before listening)."""
    config = config or GatewayConfig()
    tokens = TokenFile(token_file)
    tokens.tokens()
    gateway = Gateway(config, tokens, registry or CollectorRegistry())
    if frame_routes is not None:
        gateway.frames = frame_routes(tokens, gateway.registry)
    kafka_config = gateway_producer_config(settings.kafka.bootstrap)

    def sender() -> Sender:
        return AsyncDelivery(kafka_config, config.topic)

    _log.info("gateway on http://%s:%d publishing to %s", host, port, config.topic)
    web.run_app(build_app(gateway, sender), host=host, port=port, print=None, access_log=None)
