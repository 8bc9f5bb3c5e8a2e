"""Observations of a device: the ring of its last screen frames, ordered by
event time, and the frame an action was taken after (strictly before its
start, never after). Pure; the frames list is part of the reducer's state
(``[[ts, ref], ...]``, JSON-serialisable)."""

from __future__ import annotations

import bisect
from typing import Any

Frames = list[list[Any]]


def remember_frame(frames: Frames, ts: int, ref: str | None, keep: int) -> None:
    """Keep the frame in the ts-ordered ring of the last ``keep`` frames."""
    if not ref:
        return  # withheld (no screen_frames consent): nothing to observe
    if not frames or ts >= frames[-1][0]:
        frames.append([ts, ref])
    else:
        bisect.insort(frames, [ts, ref], key=_frame_ts)
    if len(frames) > keep:
        del frames[: len(frames) - keep]


def frame_before(frames: Frames, ts: int) -> tuple[int | None, str | None]:
    """Return ``(ts, ref)`` of the last remembered frame strictly before ``ts``."""
    i = bisect.bisect_left(frames, ts, key=_frame_ts) - 1
    if i < 0:
        return None, None
    return int(frames[i][0]), str(frames[i][1])


def _frame_ts(frame: list[Any]) -> int:
    return int(frame[0])
