"""A stream worker's stall watch: records wait on its partitions, no batch comes.

Pure: the worker feeds it the lag of its partitions (`backends.kafka.lag`) and the
times of its batches, and stops itself with the reason it returns.
"""

from __future__ import annotations

from collections.abc import Mapping


class WorkerStalled(RuntimeError):
    """Records wait on this worker's partitions but no batch was processed for long."""


class StallWatch:
    """Notices a worker that stopped taking records it has been assigned.

    Seen rarely with faust after a group member was killed: the restarted worker
    joined, was assigned partitions, and then delivered nothing more (one cause
    found and fixed: see `streams.offsets`; the worker logs its intake when the
    watch fires, for any other). Ending the process (its supervisor starts it
    again) beats a silent hang. Pure."""

    def __init__(self, limit_s: float, started: float) -> None:
        self.limit_s, self.last_batch = limit_s, started
        self.waiting_since: float | None = None
        self.rebalancing_since: float | None = None

    def progressed(self, now: float) -> None:
        self.last_batch = now

    def stalled(
        self, lags: Mapping[tuple[str, int], int], now: float, rebalancing: bool
    ) -> str | None:
        """The reason to stop, or None. `lags` are records waiting per assigned
        partition. A rebalance (with table recovery) is judged by its own
        length: one that lasts `limit_s` while records wait is a stall too
        (faust's recovery can end without resuming anything)."""
        waiting = {tp: n for tp, n in lags.items() if n > 0}
        if rebalancing:
            self.waiting_since = None
            if self.rebalancing_since is None:
                self.rebalancing_since = now
            rebalancing_s = now - self.rebalancing_since
            if not waiting or rebalancing_s < self.limit_s:
                return None
            return (
                f"worker stalled: rebalancing (table recovery) for {rebalancing_s:.0f} s "
                f"while records wait on its partitions ({_describe(waiting)}); "
                "stopping so that it is restarted"
            )
        self.rebalancing_since = None
        if not waiting:
            self.waiting_since = None
            return None
        if self.waiting_since is None:
            self.waiting_since = now
        idle = now - max(self.last_batch, self.waiting_since)  # waiting, and no batch since
        if idle < self.limit_s:
            return None
        return (
            f"worker stalled: no batch for {idle:.0f} s while records wait on its "
            f"partitions ({_describe(waiting)}); stopping so that it is restarted"
        )


def _describe(waiting: Mapping[tuple[str, int], int]) -> str:
    return ", ".join(f"{t}[{p}]: {n}" for (t, p), n in sorted(waiting.items()))
