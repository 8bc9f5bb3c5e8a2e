"""The worker's stall watch: records waiting, no batch for the limit → stop."""

from __future__ import annotations

from streams.stall import StallWatch

TP = ("capture.events", 3)


def test_waiting_records_without_batches_stall_after_the_limit() -> None:
    watch = StallWatch(60, started=0)
    assert watch.stalled({TP: 5}, 10, rebalancing=False) is None  # waiting since 10
    assert watch.stalled({TP: 5}, 69, rebalancing=False) is None
    reason = watch.stalled({TP: 5}, 71, rebalancing=False)
    assert reason is not None and "capture.events[3]: 5" in reason and "61 s" in reason


def test_batches_keep_it_alive() -> None:
    watch = StallWatch(60, started=0)
    for now in range(0, 600, 5):
        watch.progressed(now)
        assert watch.stalled({TP: 100}, now + 1, rebalancing=False) is None


def test_nothing_waiting_or_a_rebalance_resets_the_clock() -> None:
    watch = StallWatch(60, started=0)
    assert watch.stalled({TP: 5}, 100, rebalancing=False) is None
    assert watch.stalled({TP: 0}, 150, rebalancing=False) is None
    assert watch.stalled({TP: 5}, 200, rebalancing=False) is None  # waiting anew since 200
    assert watch.stalled({TP: 5}, 250, rebalancing=True) is None
    assert watch.stalled({TP: 5}, 300, rebalancing=False) is None  # since 300 again
    assert watch.stalled({TP: 5}, 361, rebalancing=False) is not None


def test_unmeasured_lag_judges_nothing() -> None:
    watch = StallWatch(60, started=0)
    assert watch.stalled({}, 1000, rebalancing=False) is None


def test_a_rebalance_that_outlasts_the_limit_with_records_waiting_is_a_stall() -> None:
    # faust's recovery can end its loop without resuming a partition: app.rebalancing
    # then stays true for good, and the worker must not wait on it forever.
    watch = StallWatch(60, started=0)
    assert watch.stalled({TP: 5}, 100, rebalancing=True) is None
    assert watch.stalled({TP: 5}, 159, rebalancing=True) is None
    reason = watch.stalled({TP: 5}, 161, rebalancing=True)
    assert reason is not None and "rebalancing" in reason and "capture.events[3]: 5" in reason


def test_a_long_rebalance_with_nothing_waiting_is_not_a_stall() -> None:
    watch = StallWatch(60, started=0)
    assert watch.stalled({TP: 0}, 100, rebalancing=True) is None
    assert watch.stalled({TP: 0}, 1000, rebalancing=True) is None


def test_a_finished_rebalance_restarts_its_clock() -> None:
    watch = StallWatch(60, started=0)
    assert watch.stalled({TP: 5}, 100, rebalancing=True) is None
    watch.progressed(150)
    assert watch.stalled({TP: 5}, 150, rebalancing=False) is None
    assert watch.stalled({TP: 5}, 200, rebalancing=True) is None  # a new rebalance from 200
    assert watch.stalled({TP: 5}, 259, rebalancing=True) is None
    assert watch.stalled({TP: 5}, 261, rebalancing=True) is not None
