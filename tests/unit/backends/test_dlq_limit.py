"""The one dead-letter limit of the worker and the sinks: frozen config,
per-partition state, the policy joining them."""

from __future__ import annotations

import pytest

from backends.dlq_limit import DlqLimit, DlqLimitExceeded, DlqPolicy
from sinks.errors import DeadLetterLimitExceeded


def test_dlq_limit_counts_each_partition_apart() -> None:
    policy = DlqPolicy(DlqLimit(max_consecutive=3, min_observed=10_000))
    for _ in range(2):
        policy.observe(True, partition=0)
        policy.observe(True, partition=1)  # interleaved: neither partition has 3 in a row
    policy.forget(0)  # revoked: its run starts over
    policy.observe(True, partition=0)
    with pytest.raises(DlqLimitExceeded, match="3 consecutive inputs of 1"):
        policy.observe(True, partition=1)


def test_dlq_limit_is_frozen_config() -> None:
    limit = DlqLimit()
    with pytest.raises(AttributeError):
        limit.max_consecutive = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        DlqLimit(max_invalid_ratio=1.5)


def test_the_sinks_stop_on_the_same_error_root() -> None:
    assert issubclass(DeadLetterLimitExceeded, DlqLimitExceeded)
