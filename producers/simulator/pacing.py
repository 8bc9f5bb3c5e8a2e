"""Rate pacing: a token bucket over an injected clock.

Pure: the caller passes `now` (seconds on any monotonic clock) and sleeps
for the returned delay itself, so tests drive it with a fake clock.
"""

from __future__ import annotations


class TokenBucket:
    """At most `rate` tokens per second on average, bursts of up to `burst`.

    `reserve` takes tokens even when the bucket is short and returns how long
    to wait before using them, so callers never starve and the long-run rate
    is exact.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def reserve(self, now: float, tokens: float = 1.0) -> float:
        """Take `tokens`; return the seconds to wait (0.0 when they were there)."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = max(now, self._updated)
        self._tokens -= tokens
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
