"""Minute aggregates: activity of one subject in 1-minute tumbling event-time windows.

Pure: no Kafka, no Faust. Keyed by ``subject_id`` (all of the subject's devices
feed one state, so time on two devices at once is not counted twice). ``apply``
mutates and returns the key's state and returns the MinuteAggregate dicts of the
windows that closed, plus the late events.

Order and lateness
    As in the sessionizer, events wait in an ``EventClock`` until the watermark
    ``max ts - grace`` passes them and are folded in ``(ts, device_id, seq)``
    order. Events below the watermark, or in a window already emitted, are late.
    Redelivered events (same device and ``seq``) are no-ops.

Measures of a window
    ``keys`` sums KeyInput ``count``; ``clicks``/``scrolls`` count MouseClick and
    Scroll events; ``mouse_distance_px`` sums MouseMove path lengths; ``events``
    counts events whose ``ts`` is in the window. ``active_seconds``: an interval
    between two consecutive events of the subject that is at most
    ``activity_threshold`` (default 60 s) is active; it is split at minute
    boundaries, so each window gets the active time inside it (never more than
    the window length). ``app_seconds`` gives the same active time to the app
    focused at the interval's start; pauses longer than the threshold count for
    no app (unlike sessions, whose app time is capped at the gap).

When a window is emitted (exactly once)
    When the watermark reached its end and the interval after the last folded
    event can no longer reach into it (the watermark is more than
    ``activity_threshold`` past that event, or the event is after the window);
    or by ``on_timer`` when the subject was quiet for ``quiet_micros`` of wall
    time -- then all windows are emitted and the rest of the current minute is
    closed to later events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.watermark import EventClock, Mark, admit_events

_SECOND = 1_000_000
MinuteAggregate = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MinuteConfig:
    """Tuning of the minute aggregator; all durations in microseconds."""

    window_micros: int = 60 * _SECOND
    grace_micros: int = 30 * _SECOND
    activity_threshold_micros: int = 60 * _SECOND
    quiet_micros: int = 90 * _SECOND
    max_seq_ranges: int = 64


@dataclass(slots=True)
class MinuteWindow:
    """Running totals of one window; times in integer microseconds (exact sums)."""

    keys: int = 0
    clicks: int = 0
    scrolls: int = 0
    mouse_distance_px: float = 0.0
    active_micros: int = 0
    app_micros: dict[str, int] = field(default_factory=dict)
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the totals as JSON-serialisable plain data (a copy)."""
        return {
            "keys": self.keys,
            "clicks": self.clicks,
            "scrolls": self.scrolls,
            "mouse_distance_px": self.mouse_distance_px,
            "active_micros": self.active_micros,
            "app_micros": dict(self.app_micros),
            "events": self.events,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MinuteWindow:
        """Rebuild from ``to_dict()`` output."""
        return cls(
            keys=int(data["keys"]),
            clicks=int(data["clicks"]),
            scrolls=int(data["scrolls"]),
            mouse_distance_px=float(data["mouse_distance_px"]),
            active_micros=int(data["active_micros"]),
            app_micros={k: int(v) for k, v in data["app_micros"].items()},
            events=int(data["events"]),
        )


def initialize() -> MinuteWindow:
    """Return the totals of an empty window."""
    return MinuteWindow()


def agg(window: MinuteWindow, mark: Mark) -> MinuteWindow:
    """Count one event (as its ``Mark``) into ``window``, in place; return ``window``.

    Commutative: the interval measures are added separately by the aggregator.
    """
    window.events += 1
    kind = mark.kind
    if kind == "KeyInput":
        window.keys += int(mark.qty)
    elif kind == "MouseMove":
        window.mouse_distance_px += mark.qty
    elif kind == "MouseClick":
        window.clicks += 1
    elif kind == "Scroll":
        window.scrolls += 1
    return window


def result(window: MinuteWindow) -> dict[str, Any]:
    """Return the measures of ``window`` in MinuteAggregate form (without the key fields)."""
    return {
        "keys": window.keys,
        "clicks": window.clicks,
        "scrolls": window.scrolls,
        "mouse_distance_px": window.mouse_distance_px,
        "active_seconds": window.active_micros / _SECOND,
        "app_seconds": {app: us / _SECOND for app, us in window.app_micros.items()},
        "events": window.events,
    }


@dataclass(slots=True)
class MinuteState:
    """Everything the minute aggregator keeps for one subject.

    ``anchor_ts``/``anchor_app``: the last folded event, start of the next interval.
    """

    org_id: str
    subject_id: str
    clock: EventClock = field(default_factory=EventClock)
    windows: dict[int, MinuteWindow] = field(default_factory=dict)
    anchor_ts: int | None = None
    anchor_app: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-serialisable plain data (window starts as strings)."""
        return {
            "org_id": self.org_id,
            "subject_id": self.subject_id,
            "clock": self.clock.to_dict(),
            "windows": {str(start): w.to_dict() for start, w in self.windows.items()},
            "anchor_ts": self.anchor_ts,
            "anchor_app": self.anchor_app,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MinuteState:
        """Rebuild from ``to_dict()`` output (possibly through JSON)."""
        return cls(
            org_id=data["org_id"],
            subject_id=data["subject_id"],
            clock=EventClock.from_dict(data["clock"]),
            windows={int(k): MinuteWindow.from_dict(v) for k, v in data["windows"].items()},
            anchor_ts=data["anchor_ts"],
            anchor_app=data["anchor_app"],
        )


def apply(
    state: MinuteState | None,
    event: Mapping[str, Any],
    cfg: MinuteConfig,
    now_micros: int | None = None,
) -> tuple[MinuteState, list[MinuteAggregate], list[Mapping[str, Any]]]:
    """Fold one capture event into the subject's minute windows.

    Returns ``(state, emitted MinuteAggregates in window order, late events)``;
    ``state`` is the argument mutated in place, or a new one when it was None.
    A duplicate returns no output and leaves the state unchanged.
    """
    if state is None:
        state = _new_state(event)
    _, emitted, late = apply_many(state, (event,), cfg, now_micros)
    return state, emitted, late


def apply_many(
    state: MinuteState | None,
    events: Iterable[Mapping[str, Any]],
    cfg: MinuteConfig,
    now_micros: int | None = None,
    marks: Sequence[Mark] | None = None,
) -> tuple[MinuteState | None, list[MinuteAggregate], list[Mapping[str, Any]]]:
    """``apply`` each event in turn; return the final state and all outputs in order.

    ``marks``, when given, are the events' ``mark_of`` in the same order (a caller
    feeding the same events to several reducers computes them once).

    The clock is drained once, after the last event, rather than after each:
    the result is the same. A mark taken in after a drain is at or above that
    drain's floor (else it is late), so one drain at the end releases the same
    marks in the same order; a window emitted on the way gets nothing from the
    marks released after it (they are past its end, and so far past the last
    anchor before it that no active interval reaches back into it), so it is
    emitted with the same totals, in the same order, by the final floor.
    """
    emitted: list[MinuteAggregate] = []
    state, late, taken = admit_events(
        state, events, marks, _new_state, now_micros, cfg.grace_micros, cfg.max_seq_ranges
    )
    if taken and state is not None:
        for mark in state.clock.drain():
            _fold(state, mark, cfg)
        _emit_closed(state, cfg, emitted)
    return state, emitted, late


def _new_state(event: Mapping[str, Any]) -> MinuteState:
    return MinuteState(org_id=str(event["org_id"]), subject_id=str(event["subject_id"]))


def on_timer(
    state: MinuteState, now_micros: int, cfg: MinuteConfig
) -> tuple[MinuteState, list[MinuteAggregate]]:
    """Emit every window of a subject quiet for ``quiet_micros`` of wall-clock time.

    Buffered events are folded first; the interval after the last event is
    dropped (a pause that long is not activity). Later events in an emitted
    window are late. A subject that is not quiet is returned unchanged.
    """
    if not state.clock.is_quiet(now_micros, cfg.quiet_micros):
        return state, []
    if not state.windows and not state.clock.pending:
        return state, []
    for mark in state.clock.release_all():
        _fold(state, mark, cfg)
    emitted = [_aggregate(state, start) for start in sorted(state.windows)]
    if emitted:
        state.clock.raise_floor(emitted[-1]["window_start"] + cfg.window_micros)
    state.windows.clear()
    state.anchor_ts = state.anchor_app = None
    return state, emitted


def _fold(state: MinuteState, mark: Mark, cfg: MinuteConfig) -> None:
    """Fold one mark, released in event-time order: its counts, then the interval before it."""
    ts = mark[0]
    size = cfg.window_micros
    start = ts - ts % size
    window = state.windows.get(start)
    if window is None:
        window = state.windows[start] = initialize()
    agg(window, mark)
    anchor, app = state.anchor_ts, state.anchor_app
    if anchor is not None and app is not None and ts - anchor <= cfg.activity_threshold_micros:
        _spread(state, anchor, ts, app, size)
    state.anchor_ts = ts
    state.anchor_app = mark[4]


def _spread(state: MinuteState, begin: int, end: int, app: str, size: int) -> None:
    """Add the active interval ``[begin, end)`` to the windows it overlaps, split at their edges."""
    t = begin
    while t < end:
        start = t - t % size
        stop = min(end, start + size)
        window = state.windows.get(start)
        if window is None:
            window = state.windows[start] = initialize()
        window.active_micros += stop - t
        window.app_micros[app] = window.app_micros.get(app, 0) + (stop - t)
        t = stop


def _emit_closed(state: MinuteState, cfg: MinuteConfig, emitted: list[MinuteAggregate]) -> None:
    """Remove and append to ``emitted``, oldest first, the windows no later event can change."""
    floor, windows = state.clock.floor, state.windows
    if floor is None or not windows:
        return
    size = cfg.window_micros
    if min(windows) + size > floor:
        return  # the oldest window is still open: the usual case, no sort needed
    anchor = state.anchor_ts
    for start in sorted(windows):
        end = start + size
        if end > floor:
            break
        if anchor is not None and anchor < end and floor - anchor <= cfg.activity_threshold_micros:
            break
        emitted.append(_aggregate(state, start))
        del windows[start]


def _aggregate(state: MinuteState, start: int) -> MinuteAggregate:
    """Return the MinuteAggregate contract dict of the window starting at ``start``."""
    return {
        "org_id": state.org_id,
        "subject_id": state.subject_id,
        "window_start": start,
        **result(state.windows[start]),
    }
