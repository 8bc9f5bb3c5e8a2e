"""The timer closes a quiet device only when the device's own partition flows: a
partition stopped by a broker failover keeps its devices open while others flow."""

from __future__ import annotations

import pytest

from streams.partition_gate import PartitionGate

SEC = 1_000_000
PERIOD = 22 * SEC  # session gap 20 s + grace 2 s, as in tests/cluster/test_scale_out.py


def _gate() -> tuple[PartitionGate, int]:
    now = 1_000 * SEC
    return PartitionGate(started=now - 600 * SEC, period=PERIOD), now


def test_a_device_of_a_stopped_partition_stays_open_while_other_partitions_flow() -> None:
    gate, now = _gate()
    gate.saw([3], now - 20 * SEC)  # partition 3's leader died 20 s ago
    gate.saw([1, 2], now - 1 * SEC)  # the others flow
    assert gate.may_close(now)  # the worker-wide gate alone would close it
    assert not gate.may_close_in(3, now)
    assert gate.may_close_in(1, now)


@pytest.mark.parametrize(
    ("silent_s", "may_close"),
    [(0, True), (5, True), (6, False), (30, False), (65, False), (66, True)],
)
def test_a_partition_closes_while_it_flows_or_after_three_periods_of_silence(
    silent_s: int, may_close: bool
) -> None:
    gate, now = _gate()
    gate.saw([7], now - silent_s * SEC)
    gate.saw([8], now)  # other input flows all along
    assert gate.may_close_in(7, now) is may_close


def test_nothing_closes_right_after_a_rebalance_and_unknown_partitions_use_the_worker_gate() -> (
    None
):
    gate, now = _gate()
    gate.saw([1], now)
    gate.restart(now - 5 * SEC)
    assert not gate.may_close_in(1, now) and not gate.may_close_in(None, now)
    assert gate.may_close_in(None, now + 18 * SEC)
    # a partition assigned without input since: silent from the restart on
    assert not gate.may_close_in(4, now + 18 * SEC)
    later = now - 5 * SEC + 3 * PERIOD
    gate.saw([1], later - SEC)  # partition 1 flows on
    assert gate.may_close_in(4, later)


def test_when_all_input_stopped_every_device_closes_after_three_periods() -> None:
    gate, now = _gate()
    gate.saw([1, 2], now - 3 * PERIOD)
    assert gate.may_close_in(1, now) and gate.may_close_in(9, now)
