"""The worker's garbage-collection tuning times every collection it lets happen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.metrics import GC_PAUSE_SECONDS
from streams.worker import GC_THRESHOLDS, GcPauses, tune_gc


def _observed(generation: str) -> tuple[float, float]:
    """(count, sum) of the pause histogram for ``generation``."""
    count = total = 0.0
    for metric in GC_PAUSE_SECONDS.collect():
        for sample in metric.samples:
            if sample.labels.get("generation") != generation:
                continue
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
    return count, total


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def test_a_pause_is_the_time_between_the_collections_start_and_stop() -> None:
    ticks = iter([10.0, 10.25])
    pauses = GcPauses(clock=lambda: next(ticks))
    count, total = _observed("1")
    pauses("start", {"generation": 1, "collected": 0, "uncollectable": 0})
    pauses("stop", {"generation": 1, "collected": 5, "uncollectable": 0})
    after_count, after_total = _observed("1")
    assert after_count == count + 1
    assert after_total == pytest.approx(total + 0.25)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_sets_the_thresholds_and_times_real_collections_once() -> None:
    tune_gc()
    tune_gc()  # a second call adds no second callback: each pause counted once
    assert gc.get_threshold() == GC_THRESHOLDS
    assert sum(isinstance(cb, GcPauses) for cb in gc.callbacks) == 1
    count, _ = _observed("2")
    gc.collect()
    assert _observed("2")[0] == count + 1
