"""When dead-lettering stops a consumer: the guard against a bad deploy.

One rule for the stream worker and the sinks, split as arroyo splits it
(`arroyo/dlq.py`):

- `DlqLimit`, frozen config: stop when the rejected share of the last
  ``window`` inputs of a partition exceeds ``max_invalid_ratio`` (once at least
  ``min_observed`` were seen), or when ``max_consecutive`` inputs of a
  partition in a row were rejected;
- `DlqLimitState`, the counts of one partition;
- `DlqPolicy`, joining them: one state per partition, `observe` raises
  `DlqLimitExceeded` when the limit is crossed.

A consumer that crosses it stops instead of dead-lettering everything. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


class DlqLimitExceeded(RuntimeError):
    """Too many inputs were rejected: the consumer stops so that a human looks."""


@dataclass(frozen=True)
class DlqLimit:
    """The limit (see the module docstring). Frozen: shared by every partition."""

    max_invalid_ratio: float = 0.5
    max_consecutive: int = 1000
    window: int = 10_000
    min_observed: int = 1000

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_invalid_ratio <= 1.0:
            raise ValueError("max_invalid_ratio must be within [0, 1]")
        if self.max_consecutive < 1 or self.window < 1 or self.min_observed < 1:
            raise ValueError("max_consecutive, window and min_observed must be >= 1")


class DlqLimitState:
    """The outcomes of one partition's last ``window`` inputs and its current
    run of rejections."""

    def __init__(self, window: int) -> None:
        self.recent: deque[bool] = deque(maxlen=window)
        self.invalid = 0
        self.consecutive = 0

    def record(self, invalid: bool) -> None:
        """Count one input (``invalid``: it was rejected)."""
        if len(self.recent) == self.recent.maxlen and self.recent[0]:
            self.invalid -= 1
        self.recent.append(invalid)
        if invalid:
            self.invalid += 1
            self.consecutive += 1
        else:
            self.consecutive = 0

    @property
    def seen(self) -> int:
        """Inputs in the window."""
        return len(self.recent)


class DlqPolicy:
    """`DlqLimit` applied to each partition's `DlqLimitState`. Not thread-safe."""

    def __init__(self, limit: DlqLimit | None = None) -> None:
        self.limit = limit or DlqLimit()
        self._states: dict[Hashable, DlqLimitState] = {}

    def observe(self, invalid: bool, partition: Hashable = None) -> None:
        """Record one input of ``partition``; raises `DlqLimitExceeded` when the
        limit is crossed (the message names the partition's counts)."""
        state = self._states.get(partition)
        if state is None:
            state = self._states[partition] = DlqLimitState(self.limit.window)
        state.record(invalid)
        limit = self.limit
        where = "" if partition is None else f" of {partition}"
        if state.consecutive >= limit.max_consecutive:
            raise DlqLimitExceeded(
                f"{state.consecutive} consecutive inputs{where} were rejected "
                f"(limit {limit.max_consecutive}); stopping instead of dead-lettering everything"
            )
        seen = state.seen
        if seen >= limit.min_observed and state.invalid / seen > limit.max_invalid_ratio:
            raise DlqLimitExceeded(
                f"{state.invalid} of the last {seen} inputs{where} were rejected "
                f"(ratio {state.invalid / seen:.2f} > {limit.max_invalid_ratio}); stopping"
            )

    def observe_all(self, outcomes: Iterable[bool], partition: Hashable = None) -> None:
        """`observe` each outcome in order (True: rejected)."""
        for invalid in outcomes:
            self.observe(invalid, partition)

    def forget(self, partition: Hashable) -> None:
        """Drop a partition's counts (it was revoked from this consumer)."""
        self._states.pop(partition, None)
