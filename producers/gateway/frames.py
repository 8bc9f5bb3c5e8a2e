"""``PUT /v1/frames/{sha256}``: screen frames into the frame store, redacted and sealed.

The agent uploads the encoded frame (PNG or WebP) under the sha256 hex of its
bytes, the ``ref`` its ``ScreenFrame`` event carries. The checks, in order,
each a typed refusal (nothing is stored on any of them):

1. bearer token, the gateway's own (401) - the frame belongs to the token's subject;
2. a ref of 64 lowercase hex characters (400 ``invalid_ref``);
   the token's frame rate: ``frames_per_token_s`` with bursts of ``frame_burst_per_token``
   (429 ``rate_limited`` with ``Retry-After``, before the body is read);
3. consent: the subject's current policy grants ``screen_frames`` (403 ``no_consent``);
   503 while the consent registry is still loading;
4. size: at most ``max_frame_bytes`` (413 ``frame_too_large``);
5. the bytes hash to the ref (400 ``hash_mismatch``);
6. already stored: 200 ``{"stored": false}`` (idempotent; the rest is skipped);
7. OCR redaction in a pool of worker processes (400 ``corrupt_frame`` for bytes
   that are not a PNG/WebP image, 413 ``frame_too_large`` above the pixel limit);
8. the subject's live data key (403 ``no_data_key``: never stored in clear);
9. sealed (`privacy.frame_sealing`) and written to the frame store: 201.

OCR never runs on the event loop, and the store is written from a thread, so
``POST /v1/events`` is served while frames are redacted. Frames never travel in
Kafka.

The gateway process composes this route from its settings in
``candor.frame_gateway`` (the consent registry, the key store and the frame
store are adapters of other layers, injected here as protocols).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import multiprocessing
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from privacy.consent import ConsentPolicy
from privacy.frame_sealing import FrameHeader, seal_frame
from privacy.frames import CorruptFrame, FrameTooLarge, RedactedFrame, redact_frame
from privacy.keystore import DataKey
from privacy.scope import Scope
from producers.gateway.auth import TokenFile, authenticate, bearer_token, hash_token
from producers.gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayRefusal,
    RateLimited,
    TooLarge,
    Unavailable,
)
from producers.gateway.ratelimit import DeviceRateLimiter
from schemas.clock import now_micros

_log = logging.getLogger(__name__)

_REF = re.compile(r"^[0-9a-f]{64}$")


class ConsentLookup(Protocol):
    """A subject's current consent (`backends.kafka.consent_view.ConsentView`)."""

    def get(self, subject_id: str) -> ConsentPolicy | None: ...


class LiveKeys(Protocol):
    """A subject's live data key (`backends.clickhouse.key_store.KeyView`)."""

    def live(self, subject: str) -> DataKey | None: ...


class FrameSink(Protocol):
    """What the gateway needs of a `backends.frame_store.FrameStore`."""

    def put(self, subject: str, digest: str, blob: bytes) -> bool: ...

    def exists(self, subject: str, digest: str) -> bool: ...


@dataclass(frozen=True)
class FrameMetrics:
    """The frame route's metrics on one registry."""

    frames: Counter
    redaction_seconds: Histogram
    boxes: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> FrameMetrics:
        return cls(
            Counter(
                "candor_gateway_frames_total",
                "Frame uploads by outcome (stored, duplicate, or the refusal reason).",
                ["outcome"],
                registry=registry,
            ),
            Histogram(
                "candor_gateway_frame_redaction_seconds",
                "Wall time of one frame's OCR redaction in the worker pool.",
                buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
                registry=registry,
            ),
            Counter(
                "candor_gateway_frame_redacted_boxes_total",
                "Word boxes blacked out in stored frames, by redaction rule.",
                ["rule"],
                registry=registry,
            ),
        )


def redaction_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes for OCR redaction (spawned, not forked: the
    gateway process holds threads of the Kafka client)."""
    return ProcessPoolExecutor(
        max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")
    )


class FrameRoutes:
    """The frame upload handler and what it needs. `install` adds it to an app."""

    def __init__(
        self,
        tokens: TokenFile,
        store: FrameSink,
        consent: ConsentLookup,
        keys: LiveKeys,
        redactor: Executor,
        registry: CollectorRegistry,
        *,
        max_frame_bytes: int = 8 * 1024 * 1024,
        frames_per_token_s: float = 2.0,
        frame_burst_per_token: float = 30.0,
        wall_clock: Callable[[], int] = now_micros,
        monotonic: Callable[[], float] = time.monotonic,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.tokens = tokens
        self.store = store
        self.consent = consent
        self.keys = keys
        self.redactor = redactor
        self.max_frame_bytes = max_frame_bytes
        self.frames_per_token_s = frames_per_token_s
        self.frame_burst_per_token = frame_burst_per_token
        self.limiter = DeviceRateLimiter(frames_per_token_s, frame_burst_per_token)
        self.metrics = FrameMetrics.on(registry)
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._on_close = on_close

    def install(self, app: web.Application) -> None:
        """Route ``PUT /v1/frames/{digest}`` to this handler; shut the pool at cleanup."""
        app.router.add_put("/v1/frames/{digest}", self.put_frame)

        async def close(_app: web.Application) -> None:
            await asyncio.get_running_loop().run_in_executor(None, self.close)

        app.on_cleanup.append(close)

    def close(self) -> None:
        """Stop the redaction pool (waits for running redactions) and the lookups."""
        self.redactor.shutdown(wait=True)
        if self._on_close is not None:
            self._on_close()

    async def put_frame(self, request: web.Request) -> web.Response:
        """``PUT /v1/frames/{digest}``; see the module docstring for the answers."""
        try:
            response = await self._store(request)
        except GatewayRefusal as refusal:
            self.metrics.frames.labels(outcome=refusal.reason).inc()
            headers = {}
            if isinstance(refusal, RateLimited | Unavailable):
                headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after_s)))
            return web.json_response(
                {"error": refusal.reason, "detail": refusal.detail},
                status=refusal.status,
                headers=headers,
            )
        return response

    async def _store(self, request: web.Request) -> web.Response:
        token = bearer_token(request.headers.get("Authorization"))
        identity = authenticate(self.tokens.tokens(), token, self._wall_clock())
        digest = request.match_info["digest"]
        if not _REF.match(digest):
            raise BadRequest("invalid_ref", "the ref is the sha256 of the frame, 64 hex digits")
        self.limiter.take(hash_token(token), 1, self._monotonic())
        subject = identity.subject_id
        self._check_consent(subject)
        body = await self._read(request)
        if hashlib.sha256(body).hexdigest() != digest:
            raise BadRequest("hash_mismatch", "the frame's sha256 is not the ref")
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, self.store.exists, subject, digest):
            self.metrics.frames.labels(outcome="duplicate").inc()
            return web.json_response({"ref": f"sha256:{digest}", "stored": False})
        redacted = await self._redact(body)
        key = self.keys.live(subject)
        if key is None:
            raise Forbidden("no_data_key", "the subject has no live data key")
        header = FrameHeader(
            key.key_id,
            redacted.media_type,
            redacted.width,
            redacted.height,
            self._wall_clock(),
            redacted.trail,
        )
        blob = seal_frame(redacted.data, key, subject, digest, header)
        stored = await loop.run_in_executor(None, self.store.put, subject, digest, blob)
        self.metrics.frames.labels(outcome="stored" if stored else "duplicate").inc()
        for rule, count in redacted.trail.items():
            self.metrics.boxes.labels(rule=rule).inc(count)
        return web.json_response(
            {
                "ref": f"sha256:{digest}",
                "stored": stored,
                "width": redacted.width,
                "height": redacted.height,
                "redactions": redacted.trail,
            },
            status=201 if stored else 200,
        )

    def _check_consent(self, subject: str) -> None:
        try:
            policy = self.consent.get(subject)
        except RuntimeError as err:  # a registry that is not loaded yet
            raise Unavailable("consent_unavailable", str(err), 1.0) from None
        if policy is None or not policy.allows(Scope.SCREEN_FRAMES):
            raise Forbidden("no_consent", "the subject has not consented to screen_frames")

    async def _read(self, request: web.Request) -> bytes:
        limit = self.max_frame_bytes
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge("frame_too_large", f"{request.content_length} bytes, at most {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise TooLarge("frame_too_large", f"more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _redact(self, body: bytes) -> RedactedFrame:
        started = time.perf_counter()
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self.redactor, redact_frame, body
            )
        except CorruptFrame as err:
            raise BadRequest("corrupt_frame", str(err)) from None
        except FrameTooLarge as err:
            raise TooLarge("frame_too_large", str(err)) from None
        self.metrics.redaction_seconds.observe(time.perf_counter() - started)
        return result
