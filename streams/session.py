"""Sessionizer: event-time work sessions of one (subject_id, device_id).

Pure: no Kafka, no Faust. ``apply`` takes the key's state (or None), one
contract-form capture event and the config, and returns the state (the same
object, mutated in place -- no copies on the hot path), the sessions that
closed and the events that came too late.

How events are folded
    Events wait in the key's ``EventClock`` (streams.watermark) until the
    watermark ``max ts - grace`` passes them, and are then folded one by one in
    ``(ts, seq)`` order. So out-of-order arrival within the grace period gives
    exactly the sessions an ordered stream gives (the buffer approach, not
    commutative folding: the session boundaries and the interval measures
    below depend on order). Events below the watermark are ``late``.

When a session ends (``end_reason``)
    * ``gap``: the next event is more than ``gap`` after the last one (a gap of
      exactly ``gap`` keeps the session), or the watermark passed
      ``last event + gap`` so no later event can join it any more;
    * ``max_length``: the next event is more than ``max_length`` after the
      session's first event; it opens the next session;
    * ``idle`` / ``locked``: an ActivityState event with that state; it is the
      session's last event (with any event of the very same ``ts``, so that the
      next session's id, made of its start ts, never repeats this one's);
    * ``timer``: ``on_timer`` saw no event for ``gap + grace`` of wall-clock time.
    Calendar boundaries (midnight, DST) never split a session.

Measures of a session
    ``active_seconds``: sum of the intervals between consecutive events that
    are at most ``activity_threshold`` (default 60 s) -- longer pauses count as
    inactive. ``app_seconds``: every interval between consecutive events is
    given to the app focused at its start (the earlier event's ``app``), capped
    at ``gap``. ``keystrokes`` sums KeyInput ``count``; ``clicks``, ``scrolls``
    and ``commands_run`` count MouseClick, Scroll and TerminalCommand events;
    ``mouse_distance_px`` sums MouseMove path lengths; ``event_ids_count`` is the
    number of distinct events (dedupe by per-device ``seq``, see the clock).

Restart safety
    ``SessionState.to_dict()``/``from_dict()`` round-trip through JSON. A worker
    restored from the table and fed the same events again emits nothing twice:
    redelivered events are duplicates, and closed sessions are below the floor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.watermark import EventClock, Mark, admit_events

_MINUTE = 60 * 1_000_000
Session = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Tuning of the sessionizer; all durations in microseconds."""

    gap_micros: int = 15 * _MINUTE
    max_length_micros: int = 10 * 60 * _MINUTE
    grace_micros: int = 30 * 1_000_000
    activity_threshold_micros: int = _MINUTE
    max_seq_ranges: int = 64


@dataclass(slots=True)
class OpenSession:
    """Running totals of the session being built (its events are all folded in order)."""

    start_ts: int
    last_ts: int
    last_app: str
    active_micros: int = 0
    app_micros: dict[str, int] = field(default_factory=dict)
    event_counts: dict[str, int] = field(default_factory=dict)
    keystrokes: int = 0
    clicks: int = 0
    scrolls: int = 0
    commands_run: int = 0
    mouse_distance_px: float = 0.0
    events: int = 0
    ending: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the totals as JSON-serialisable plain data (a copy)."""
        return {
            "start_ts": self.start_ts,
            "last_ts": self.last_ts,
            "last_app": self.last_app,
            "active_micros": self.active_micros,
            "app_micros": dict(self.app_micros),
            "event_counts": dict(self.event_counts),
            "keystrokes": self.keystrokes,
            "clicks": self.clicks,
            "scrolls": self.scrolls,
            "commands_run": self.commands_run,
            "mouse_distance_px": self.mouse_distance_px,
            "events": self.events,
            "ending": self.ending,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpenSession:
        """Rebuild from ``to_dict()`` output."""
        return cls(
            start_ts=int(data["start_ts"]),
            last_ts=int(data["last_ts"]),
            last_app=data["last_app"],
            active_micros=int(data["active_micros"]),
            app_micros={k: int(v) for k, v in data["app_micros"].items()},
            event_counts={k: int(v) for k, v in data["event_counts"].items()},
            keystrokes=int(data["keystrokes"]),
            clicks=int(data["clicks"]),
            scrolls=int(data["scrolls"]),
            commands_run=int(data["commands_run"]),
            mouse_distance_px=float(data["mouse_distance_px"]),
            events=int(data["events"]),
            ending=data["ending"],
        )


@dataclass(slots=True)
class SessionState:
    """Everything the sessionizer keeps for one (subject_id, device_id)."""

    org_id: str
    subject_id: str
    device_id: str
    clock: EventClock = field(default_factory=EventClock)
    open: OpenSession | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-serialisable plain data (a copy)."""
        return {
            "org_id": self.org_id,
            "subject_id": self.subject_id,
            "device_id": self.device_id,
            "clock": self.clock.to_dict(),
            "open": None if self.open is None else self.open.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionState:
        """Rebuild from ``to_dict()`` output (possibly through JSON)."""
        return cls(
            org_id=data["org_id"],
            subject_id=data["subject_id"],
            device_id=data["device_id"],
            clock=EventClock.from_dict(data["clock"]),
            open=None if data["open"] is None else OpenSession.from_dict(data["open"]),
        )


def apply(
    state: SessionState | None,
    event: Mapping[str, Any],
    cfg: SessionConfig,
    now_micros: int | None = None,
) -> tuple[SessionState, list[Session], list[Mapping[str, Any]]]:
    """Fold one capture event into the key's sessions.

    ``now_micros`` is the worker's wall clock (see ``watermark.wall_clock`` for
    the fallback). Returns ``(state, closed sessions, late events)``; ``state``
    is the argument mutated in place, or a new state when it was None. A
    duplicate returns no output and leaves the state unchanged. Never blocks,
    never raises on contract-form events.
    """
    if state is None:
        state = _new_state(event)
    _, closed, late = apply_many(state, (event,), cfg, now_micros)
    return state, closed, late


def apply_many(
    state: SessionState | None,
    events: Iterable[Mapping[str, Any]],
    cfg: SessionConfig,
    now_micros: int | None = None,
    marks: Sequence[Mark] | None = None,
) -> tuple[SessionState | None, list[Session], list[Mapping[str, Any]]]:
    """``apply`` each event in turn; return the final state and all outputs in order.

    ``marks``, when given, are the events' ``mark_of`` in the same order (a caller
    feeding the same events to several reducers computes them once).

    The clock is drained once, after the last event, rather than after each:
    the result is the same. A mark taken in after a drain is at or above that
    drain's floor (else it is late), so one drain at the end releases the same
    marks in the same order; and an open session the floor would have closed
    on the way (its ``ending`` passed, or ``gap`` behind the floor) is closed,
    for the same reason, by the next released mark or by the final floor.
    """
    closed: list[Session] = []
    state, late, taken = admit_events(
        state, events, marks, _new_state, now_micros, cfg.grace_micros, cfg.max_seq_ranges
    )
    if taken and state is not None:
        _release(state, cfg, closed)
    return state, closed, late


def _new_state(event: Mapping[str, Any]) -> SessionState:
    return SessionState(
        org_id=str(event["org_id"]),
        subject_id=str(event["subject_id"]),
        device_id=str(event["device_id"]),
    )


def _release(state: SessionState, cfg: SessionConfig, closed: list[Session]) -> None:
    """Fold the marks the watermark passed; close the open session if the floor ends it."""
    for mark in state.clock.drain():
        _fold(state, mark, cfg, closed)
    open_session, floor = state.open, state.clock.floor
    if open_session is not None and floor is not None:
        if open_session.ending is not None and floor > open_session.last_ts:
            closed.append(_close(state, open_session, open_session.ending))
        elif floor > open_session.last_ts + cfg.gap_micros:
            closed.append(_close(state, open_session, "gap"))


def on_timer(
    state: SessionState, now_micros: int, cfg: SessionConfig
) -> tuple[SessionState, list[Session]]:
    """Close the session of a quiet key: no event for ``gap + grace`` of wall-clock time.

    Folds every buffered event, closes what they close, and closes the remaining
    open session with ``end_reason="timer"``. Events that would have joined a
    timer-closed session (``ts <= end + gap``) are late from then on. A key that
    is not quiet, or has nothing open, is returned unchanged with no output.
    """
    if not state.clock.is_quiet(now_micros, cfg.gap_micros + cfg.grace_micros):
        return state, []
    if state.open is None and not state.clock.pending:
        return state, []
    closed: list[Session] = []
    for mark in state.clock.release_all():
        _fold(state, mark, cfg, closed)
    if state.open is not None:
        state.clock.raise_floor(state.open.last_ts + cfg.gap_micros + 1)
        closed.append(_close(state, state.open, state.open.ending or "timer"))
    return state, closed


def _fold(state: SessionState, mark: Mark, cfg: SessionConfig, closed: list[Session]) -> None:
    """Fold one mark, released in event-time order, into the open session."""
    ts, _, _, kind, app, qty, activity = mark
    session = state.open
    if session is not None:
        if session.ending is not None and ts > session.last_ts:
            closed.append(_close(state, session, session.ending))
            session = None
        elif ts - session.last_ts > cfg.gap_micros:
            closed.append(_close(state, session, "gap"))
            session = None
        elif ts - session.start_ts > cfg.max_length_micros:
            closed.append(_close(state, session, "max_length"))
            session = None
    if session is None:
        session = state.open = OpenSession(start_ts=ts, last_ts=ts, last_app=app)
    else:
        interval = ts - session.last_ts
        if interval <= cfg.activity_threshold_micros:
            session.active_micros += interval
        app_micros = session.app_micros
        last_app = session.last_app
        app_micros[last_app] = app_micros.get(last_app, 0) + min(interval, cfg.gap_micros)
        session.last_ts = ts
        session.last_app = app
    counts = session.event_counts
    counts[kind] = counts.get(kind, 0) + 1
    session.events += 1
    if kind == "KeyInput":
        session.keystrokes += int(qty)
    elif kind == "MouseMove":
        session.mouse_distance_px += qty
    elif kind == "MouseClick":
        session.clicks += 1
    elif kind == "Scroll":
        session.scrolls += 1
    elif kind == "TerminalCommand":
        session.commands_run += 1
    elif kind == "ActivityState" and activity in ("idle", "locked"):
        session.ending = activity  # closes once no event can share its ts any more


def _close(state: SessionState, session: OpenSession, reason: str) -> Session:
    """Turn ``session`` (the key's open session) into its Session contract dict; clear it."""
    state.open = None
    return {
        "session_id": f"{state.subject_id}:{state.device_id}:{session.start_ts}",
        "org_id": state.org_id,
        "subject_id": state.subject_id,
        "device_id": state.device_id,
        "start_ts": session.start_ts,
        "end_ts": session.last_ts,
        "end_reason": reason,
        "active_seconds": session.active_micros / 1_000_000,
        "event_counts": session.event_counts,
        "app_seconds": {app: us / 1_000_000 for app, us in session.app_micros.items()},
        "keystrokes": session.keystrokes,
        "clicks": session.clicks,
        "scrolls": session.scrolls,
        "mouse_distance_px": session.mouse_distance_px,
        "commands_run": session.commands_run,
        "event_ids_count": session.events,
    }
