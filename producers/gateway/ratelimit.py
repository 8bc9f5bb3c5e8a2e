"""Per-device token-bucket rate limit of the HTTP gateway (pure; `now` comes in).

Each device gets `rate` events per second with bursts of up to `burst` events.
Unlike `producers.simulator.pacing.TokenBucket`, which always takes tokens and says how
long to sleep, a limiter refuses: a batch that does not fit takes nothing and
learns how long until it would. Limits are per gateway process: N gateways
behind a load balancer allow up to N times the rate, which is the price of
staying stateless.
"""

from __future__ import annotations

from dataclasses import dataclass

from producers.gateway.errors import RateLimited

DEFAULT_MAX_DEVICES = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class DeviceRateLimiter:
    """Token buckets keyed by device_id. Not thread-safe (one event loop owns it).

    Idle buckets refill to full, so once there are more than `max_devices`
    buckets the full ones are dropped (a dropped bucket is recreated full:
    the same state). Raises ValueError for non-positive limits.
    """

    def __init__(
        self, rate: float, burst: float, *, max_devices: int = DEFAULT_MAX_DEVICES
    ) -> None:
        if rate <= 0 or burst <= 0 or max_devices < 1:
            raise ValueError("rate, burst and max_devices must be positive")
        self.rate = rate
        self.burst = burst
        self.max_devices = max_devices
        self._buckets: dict[str, _Bucket] = {}

    def take(self, device_id: str, events: int, now: float) -> None:
        """Take `events` tokens from `device_id`'s bucket at monotonic time `now`.

        Raises `RateLimited` (taking nothing) with the seconds until they would
        be there. A batch larger than `burst` can never fit: it is refused with
        the time to refill the whole bucket, and the caller should cap batch
        sizes at or below `burst`.
        """
        bucket = self._buckets.get(device_id)
        if bucket is None:
            if len(self._buckets) >= self.max_devices:
                self._forget_full(now)
            bucket = self._buckets[device_id] = _Bucket(self.burst, now)
        self._refill(bucket, now)
        if events <= bucket.tokens:
            bucket.tokens -= events
            return
        if events > self.burst:
            raise RateLimited(self.burst / self.rate)
        raise RateLimited((events - bucket.tokens) / self.rate)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = max(now, bucket.updated)

    def _forget_full(self, now: float) -> None:
        for device_id, bucket in list(self._buckets.items()):
            self._refill(bucket, now)
            if bucket.tokens >= self.burst:
                del self._buckets[device_id]
        if len(self._buckets) >= self.max_devices:
            # Every device is busy: forget the fullest half rather than grow without bound.
            ranked = sorted(self._buckets, key=lambda d: self._buckets[d].tokens, reverse=True)
            for device_id in ranked[: len(ranked) // 2 or 1]:
                del self._buckets[device_id]

    def __len__(self) -> int:
        return len(self._buckets)


class TokenLimiter:
    """Per-token limits checked *before* a request body is read or parsed: a
    request rate and a byte rate, each a token bucket keyed by the token's hash.

    A client that floods with requests, or with large bodies, is refused on the
    headers (or, for a body without Content-Length, while it streams) instead
    of costing a parse of up to ``max_body_bytes`` first; the per-device event
    limit still applies after parsing. Not thread-safe (one event loop owns
    it). Raises ValueError for non-positive limits.
    """

    def __init__(
        self,
        requests_per_s: float,
        request_burst: float,
        bytes_per_s: float,
        byte_burst: float,
        *,
        max_tokens: int = DEFAULT_MAX_DEVICES,
    ) -> None:
        self.requests = DeviceRateLimiter(requests_per_s, request_burst, max_devices=max_tokens)
        self.bytes = DeviceRateLimiter(bytes_per_s, byte_burst, max_devices=max_tokens)

    def take_request(self, token_hash: str, now: float) -> None:
        """Count one request of the token; raises `RateLimited` (taking nothing)."""
        self.requests.take(token_hash, 1, now)

    def take_bytes(self, token_hash: str, size: int, now: float) -> None:
        """Count ``size`` body bytes of the token; raises `RateLimited` (taking
        nothing) when they do not fit, with the seconds until they would."""
        if size > 0:
            self.bytes.take(token_hash, size, now)
