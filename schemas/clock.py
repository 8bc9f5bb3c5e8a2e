"""Time as the contract carries it: microseconds since the Unix epoch (UTC)."""

from __future__ import annotations

import time


def now_micros() -> int:
    """Wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000
