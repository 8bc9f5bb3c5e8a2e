"""When the timer may close a quiet device, judged by the device's own input partition.

`streams.activity.TimerGate` opens for every device once any input flows: "the
others still send, so this device really is quiet". That holds for one
partition, not across partitions. When a broker dies, the partitions it led
stop for this worker (until the controller fences the broker and a new leader
serves them) while the others flow on: the devices of the stopped partitions
look quiet, their sessions were closed by the timer, and their events, still
waiting in Kafka, arrived afterwards as late events, split off the session
they belonged to (seen in tests/cluster/test_scale_out.py: a device's session
closed during the failover with 25 of its 32 events, the next 4 late).

`PartitionGate` keeps the input time of each partition. A device may close
when its partition delivered input within `flow` (the partition flows, so the
device really is quiet), or when its partition (or all input) has been silent
for 3 x `period` (as `TimerGate` for all input), and never in the first
`period` after a start or a rebalance. Pure; the caller passes `now` (micros).
"""

from __future__ import annotations

from collections.abc import Iterable

from streams.activity import TimerGate


class PartitionGate(TimerGate):
    """`TimerGate` with per-partition input times; `flow` defaults to `period` / 4."""

    def __init__(self, started: int, period: int, flow: int | None = None) -> None:
        super().__init__(started, period)
        self.flow = flow if flow is not None else max(period // 4, 1)
        self.partition_input: dict[int, int] = {}

    def saw(self, partitions: Iterable[int], now: int) -> None:
        """A batch from `partitions` was read at `now`."""
        self.last_input = now
        for partition in partitions:
            self.partition_input[partition] = now

    def may_close_in(self, partition: int | None, now: int) -> bool:
        """True when a timer tick at `now` may close a quiet device of `partition`
        (None: not known, the worker-wide `may_close` decides)."""
        if not self.may_close(now):
            return False
        if partition is None or now - self.last_input >= 3 * self.period:
            return True
        silent = now - self.partition_input.get(partition, self.started)
        return silent < self.flow or silent >= 3 * self.period
