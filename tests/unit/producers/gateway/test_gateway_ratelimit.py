"""Per-device token buckets: refuse without taking, say when to retry."""

from __future__ import annotations

import pytest

from producers.gateway.errors import RateLimited
from producers.gateway.ratelimit import DeviceRateLimiter


@pytest.mark.parametrize(
    ("takes", "refused_at", "retry_after"),
    [
        ([(0.0, 10)], None, None),  # a full burst passes
        ([(0.0, 10), (0.0, 1)], 1, 0.1),  # then one more waits 1/rate
        ([(0.0, 10), (0.5, 5)], None, None),  # half a second refills 5
        ([(0.0, 10), (0.5, 6)], 1, 0.1),
        ([(0.0, 4), (0.0, 7)], 1, 0.1),  # 6 left, 7 wanted
        ([(0.0, 25)], 0, 1.0),  # bigger than the burst: full refill
        ([(0.0, 10), (100.0, 10), (100.0, 1)], 2, 0.1),  # refill is capped at the burst
    ],
)
def test_bucket_decisions(
    takes: list[tuple[float, int]], refused_at: int | None, retry_after: float | None
) -> None:
    limiter = DeviceRateLimiter(rate=10, burst=10)
    for index, (now, events) in enumerate(takes):
        if index == refused_at:
            with pytest.raises(RateLimited) as err:
                limiter.take("dev", events, now)
            assert err.value.status == 429
            assert err.value.retry_after_s == pytest.approx(retry_after)
        else:
            limiter.take("dev", events, now)


def test_a_refused_batch_takes_nothing() -> None:
    limiter = DeviceRateLimiter(rate=10, burst=10)
    limiter.take("dev", 8, 0.0)
    with pytest.raises(RateLimited):
        limiter.take("dev", 5, 0.0)
    limiter.take("dev", 2, 0.0)  # the 2 left are still there


def test_devices_have_their_own_buckets() -> None:
    limiter = DeviceRateLimiter(rate=1, burst=5)
    limiter.take("a", 5, 0.0)
    limiter.take("b", 5, 0.0)
    with pytest.raises(RateLimited):
        limiter.take("a", 1, 0.0)


def test_idle_devices_are_forgotten_beyond_max_devices() -> None:
    limiter = DeviceRateLimiter(rate=1, burst=5, max_devices=3)
    for n, device in enumerate(["a", "b", "c"]):
        limiter.take(device, 5, float(n))
    limiter.take("d", 1, 100.0)  # a, b, c are full again by now: dropped
    assert len(limiter) == 1
    limiter.take("a", 5, 100.0)  # a forgotten bucket comes back full


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_nonsense_limits_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        DeviceRateLimiter(rate, burst)
