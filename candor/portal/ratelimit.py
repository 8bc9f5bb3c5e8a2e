"""A fixed-window rate limit per key (client address for sign-in, subject for downloads).

Pure apart from its own counters: ``now`` is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RateLimit", "RateLimited"]


class RateLimited(Exception):
    """Too many attempts; ``retry_after`` seconds until the window opens again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass
class RateLimit:
    """At most ``limit`` calls of :meth:`take` per key in each ``window_s`` window."""

    limit: int
    window_s: float
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def take(self, key: str, now: float) -> None:
        """Count one call for ``key``; raise :class:`RateLimited` beyond the limit."""
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.window_s:
            start, used = now, 0
        if used >= self.limit:
            raise RateLimited(start + self.window_s - now)
        self._windows[key] = (start, used + 1)
        if len(self._windows) > 10_000:  # forget closed windows
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window_s}
