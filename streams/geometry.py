"""Pointer geometry: lengths, distances and timing of captured mouse paths.

A path is a list of ``{"dt_ms": int, "x": int, "y": int}`` points, oldest first,
where ``dt_ms`` is the delay since the previous point of the same path (0 for the
first point, which happens at the event's ``ts``) -- the ``PathPoint`` contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

PathPoint = Mapping[str, int]


def distance(x0: int, y0: int, x1: int, y1: int) -> float:
    """Return the euclidean distance in pixels between two pointer positions."""
    return math.hypot(x1 - x0, y1 - y0)


def path_length(path: Sequence[PathPoint]) -> float:
    """Return the pointer travel of ``path`` in pixels: the sum of its segment lengths.

    An empty or one-point path has length 0. The jump between two separate
    paths is not part of either path, so summing per-event lengths never
    invents travel the device did not sample.
    """
    total = 0.0
    previous: PathPoint | None = None
    for point in path:
        if previous is not None:
            total += math.hypot(point["x"] - previous["x"], point["y"] - previous["y"])
        previous = point
    return total


def path_duration_micros(path: Sequence[PathPoint]) -> int:
    """Return the time from the first to the last point of ``path``, in microseconds."""
    return sum(int(point["dt_ms"]) for point in path[1:]) * 1000


def append_path(
    merged: list[dict[str, int]], merged_end_ts: int, path: Sequence[PathPoint], path_ts: int
) -> int:
    """Append ``path`` (whose first point happened at ``path_ts``) to ``merged`` in place.

    ``merged`` ends at ``merged_end_ts`` (micros). The first appended point gets
    the delay since that end (never negative, so out-of-order input cannot make
    time run backwards). Returns the new end time of ``merged`` in micros.
    """
    if not path:
        return merged_end_ts
    continuing = bool(merged)
    first_ts = max(path_ts, merged_end_ts) if continuing else path_ts
    first_dt_ms = (first_ts - merged_end_ts) // 1000 if continuing else 0
    first = path[0]
    merged.append({"dt_ms": first_dt_ms, "x": int(first["x"]), "y": int(first["y"])})
    # one pass over the points for the copies, their delays summed from the copies
    # (path_duration_micros, without reading and converting each point again)
    rest = [{"dt_ms": int(p["dt_ms"]), "x": int(p["x"]), "y": int(p["y"])} for p in path[1:]]
    merged += rest
    duration_ms = 0
    for point in rest:
        duration_ms += point["dt_ms"]
    return first_ts + duration_ms * 1000
