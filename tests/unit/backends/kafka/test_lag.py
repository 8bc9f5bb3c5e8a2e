"""Consumer lag per partition, from the committed and the end offsets."""

from __future__ import annotations

import pytest

from backends.kafka.lag import Partition, lag_by_partition

T = "capture.events"


@pytest.mark.parametrize(
    ("end", "committed", "start", "expected"),
    [
        ({(T, 0): 100, (T, 1): 50}, {(T, 0): 40, (T, 1): 50}, {}, {(T, 0): 60, (T, 1): 0}),
        # never committed: everything still retained is to read
        ({(T, 0): 100}, {}, {(T, 0): 30}, {(T, 0): 70}),
        ({(T, 0): 100}, {(T, 0): None}, {(T, 0): 0}, {(T, 0): 100}),
        # committed below what retention kept: counted from the retained start
        ({(T, 0): 100}, {(T, 0): 5}, {(T, 0): 80}, {(T, 0): 20}),
        # an end offset read before a commit landed is never negative lag
        ({(T, 0): 100}, {(T, 0): 103}, {}, {(T, 0): 0}),
        # an empty topic
        ({(T, 0): 0}, {}, {(T, 0): 0}, {(T, 0): 0}),
    ],
)
def test_lag_by_partition(
    end: dict[Partition, int],
    committed: dict[Partition, int | None],
    start: dict[Partition, int],
    expected: dict[Partition, int],
) -> None:
    assert lag_by_partition(end, committed, start) == expected


def test_published_series_follow_the_partitions_measured() -> None:
    """A partition that moved to another worker stops being reported here."""
    from prometheus_client import CollectorRegistry, Gauge

    from backends.kafka.lag import publish_lag

    registry = CollectorRegistry()
    gauge = Gauge("candor_test_lag_records", "lag", ["topic", "partition"], registry=registry)
    shown: set[Partition] = set()

    def series() -> dict[tuple[str, str], float]:
        return {
            (s.labels["topic"], s.labels["partition"]): s.value
            for m in registry.collect()
            for s in m.samples
        }

    publish_lag(gauge, {(T, 0): 5, (T, 1): 7}, shown)
    assert series() == {(T, "0"): 5, (T, "1"): 7}
    publish_lag(gauge, {(T, 1): 2, (T, 2): 0}, shown)
    assert series() == {(T, "1"): 2, (T, "2"): 0}
