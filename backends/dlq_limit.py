"""When dead-lettering stops a consumer: the guard against a bad deploy.

When too many inputs are rejected (a ratio over a sliding window, or too many
in a row) the consumer stops with `DlqLimitExceeded` instead of
dead-lettering everything. Pure.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


class DlqLimitExceeded(RuntimeError):
    """Too many inputs were rejected: the worker stops so that a human looks."""


@dataclass
class DlqLimit:
    """Stop when the rejected share of the last `window` inputs exceeds
    `max_invalid_ratio` (once at least `min_observed` were seen), or when
    `max_consecutive` inputs in a row were rejected."""

    max_invalid_ratio: float = 0.5
    max_consecutive: int = 1000
    window: int = 10_000
    min_observed: int = 1000

    def __post_init__(self) -> None:
        self._recent: deque[bool] = deque(maxlen=self.window)
        self._invalid = 0
        self._consecutive = 0

    def observe(self, invalid: bool) -> None:
        """Record one input; raises DlqLimitExceeded when the limit is crossed."""
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._invalid -= 1
        self._recent.append(invalid)
        if invalid:
            self._invalid += 1
            self._consecutive += 1
        else:
            self._consecutive = 0
        if self._consecutive >= self.max_consecutive:
            raise DlqLimitExceeded(
                f"{self._consecutive} consecutive inputs were rejected "
                f"(limit {self.max_consecutive}); stopping instead of dead-lettering everything"
            )
        seen = len(self._recent)
        if seen >= self.min_observed and self._invalid / seen > self.max_invalid_ratio:
            raise DlqLimitExceeded(
                f"{self._invalid} of the last {seen} inputs were rejected "
                f"(ratio {self._invalid / seen:.2f} > {self.max_invalid_ratio}); stopping"
            )
