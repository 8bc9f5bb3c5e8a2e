"""The fixed-window limit of sign-ins and downloads."""

from __future__ import annotations

import pytest

from candor.portal.ratelimit import RateLimit, RateLimited


def test_the_limit_holds_per_key_and_reopens_with_the_next_window() -> None:
    limit = RateLimit(limit=2, window_s=60)
    limit.take("1.2.3.4", 0)
    limit.take("1.2.3.4", 1)
    with pytest.raises(RateLimited) as refused:
        limit.take("1.2.3.4", 10)
    assert refused.value.retry_after == 50
    limit.take("5.6.7.8", 10)  # another client is not affected
    limit.take("1.2.3.4", 60)  # a new window


def test_refused_calls_do_not_extend_the_window() -> None:
    limit = RateLimit(limit=1, window_s=10)
    limit.take("k", 0)
    for t in range(1, 10):
        with pytest.raises(RateLimited):
            limit.take("k", t)
    limit.take("k", 10)
