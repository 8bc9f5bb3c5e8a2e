"""Action reducer: one device's capture events reduced to training actions.

Pure: no Kafka, no Faust. Runs after redaction, per device, in ``seq`` order
(the order of the device's Kafka partition). ``apply`` mutates and returns the
device's state and returns the actions that completed, plus late events: an
event whose ``seq`` is below one already reduced (actions are never rewritten).
A redelivered event (its ``seq`` already taken in) is a no-op.

Reduction rules
    * typing: consecutive KeyInput text chunks and printable keys (a one-char
      key, Enter, Tab, Space; shift allowed) merge until a pause longer than
      ``typing_pause``, a change of app (a WindowFocus event or another
      ``app_name``), any other non-frame event, or ``max_text_chars``.
      Backspace deletes the last merged character; a Backspace with nothing
      left to delete is kept as a leading ``"\\b"``, so the text is the net edit.
      A lone modifier key press (Shift, Control ...) folds in without text.
      The text is None when any folded keystroke was withheld (no key/text, or
      a secure field). When the action closes, the optional ``redact`` is run
      over the merged text: a secret split across chunks is caught there. The
      worker's clean events carry no typed text of their own (per-event rows
      keep counts and key classes only); the reducer reads each KeyInput's typed
      content from ``streams.keystrokes.typed_payload``, so this merged,
      redacted text is the only place typed content is kept.
    * shortcut: a key held with ctrl, alt or meta, or a named non-text key
      (Escape, ArrowLeft, shift+Tab ...): ``chord`` is the sorted modifiers and
      the lowercased key joined by "+", e.g. "ctrl+shift+p"; None if the key
      was withheld.
    * click: a MouseClick; MouseMove paths that end at most
      ``click_path_window`` (1 s) before it are merged into its ``path`` (and
      its ``start_ts``). drag: the same, when the pointer was still moving at
      the click (at most ``drag_max_pause`` after the path's last point) and
      the click is more than ``drag_min_distance_px`` from the path's start --
      capture v1 has no button-down event, so this is a heuristic. A path
      that no click follows is dropped.
    * scroll: consecutive Scrolls merge (dx, dy summed) until a pause longer
      than ``scroll_pause`` or another event.
    * command: a TerminalCommand; edit: an IdeEdit (``text`` = its diff).
    * ScreenFrames are observations, not actions, and break nothing. Every
      action's ``observation_ref`` is the ref of the device's last frame with
      ``ts`` strictly before the action's ``start_ts`` (a frame reordered
      behind later events still counts; it is never reported late).
    ``session_hint`` is ``subject:device:start`` of the session the action's
    first event opens or continues, by the sessionizer's gap, max-length and
    idle/locked rules applied in arrival order (exact for ordered input).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any

from streams.geometry import append_path, distance
from streams.keystrokes import classify_key, typed_payload
from streams.observations import frame_before, remember_frame
from streams.watermark import SeqLedger, wall_clock

_SECOND = 1_000_000
_ACTION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "candor:training.actions")
_NAMESPACE_BYTES = _ACTION_NAMESPACE.bytes
_ENDS_SESSION = ("idle", "locked")

Action = dict[str, Any]
Redactor = Callable[[str], tuple[str, tuple[str, ...]]]
"""Redacts merged text: returns the redacted text and the names of the rules that fired."""


@dataclass(frozen=True, slots=True)
class ActionConfig:
    """Tuning of the action reducer; durations in microseconds."""

    typing_pause_micros: int = 2 * _SECOND
    scroll_pause_micros: int = 2 * _SECOND
    click_path_window_micros: int = 1 * _SECOND
    drag_max_pause_micros: int = 50_000
    drag_min_distance_px: float = 10.0
    quiet_micros: int = 2 * _SECOND
    session_gap_micros: int = 15 * 60 * _SECOND
    session_max_length_micros: int = 10 * 3600 * _SECOND
    max_text_chars: int = 4096
    max_path_points: int = 2048
    frames_kept: int = 8
    max_seq_ranges: int = 64


@dataclass(slots=True)
class Draft:
    """An action still growing (typing, scroll) or a pointer path waiting for a click."""

    kind: str
    first_event_id: str
    start_ts: int
    end_ts: int
    app_name: str
    window_title: str | None
    session_hint: str | None
    obs_ts: int | None
    obs_ref: str | None
    event_count: int = 0
    redactions: list[str] = field(default_factory=list)
    text: str = ""
    withheld: bool = False
    dx: int = 0
    dy: int = 0
    path: list[dict[str, int]] = field(default_factory=list)

    def absorb(self, event: Mapping[str, Any], ts: int) -> None:
        """Count ``event`` into the draft: end time, event count, redaction trail."""
        if ts > self.end_ts:
            self.end_ts = ts
        self.event_count += 1
        rules = event.get("redactions")
        if rules:  # most events carry none
            for rule in rules:
                if rule not in self.redactions:
                    self.redactions.append(rule)


@dataclass(slots=True)
class ActionState:
    """Everything the reducer keeps for one device. ``frames``: ``[ts, ref]`` by ts."""

    org_id: str
    subject_id: str
    device_id: str
    ledger: SeqLedger = field(default_factory=SeqLedger)
    max_seq: int | None = None
    max_ts: int | None = None
    last_wall: int | None = None
    open: Draft | None = None
    path: Draft | None = None
    frames: list[list[Any]] = field(default_factory=list)
    session_start: int | None = None
    session_last: int | None = None
    session_ended: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-serialisable plain data (a copy)."""
        return {
            "org_id": self.org_id,
            "subject_id": self.subject_id,
            "device_id": self.device_id,
            "ledger": [r[:] for r in self.ledger.ranges],
            "max_seq": self.max_seq,
            "max_ts": self.max_ts,
            "last_wall": self.last_wall,
            "open": None if self.open is None else _draft_to_dict(self.open),
            "path": None if self.path is None else _draft_to_dict(self.path),
            "frames": [f[:] for f in self.frames],
            "session_start": self.session_start,
            "session_last": self.session_last,
            "session_ended": self.session_ended,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionState:
        """Rebuild from ``to_dict()`` output (possibly through JSON)."""
        fields = dict(data)
        fields["ledger"] = SeqLedger([[int(lo), int(hi)] for lo, hi in data["ledger"]])
        for name in ("open", "path"):
            if data[name] is not None:
                draft = dict(data[name])
                draft["redactions"] = list(draft["redactions"])
                draft["path"] = [dict(p) for p in draft["path"]]
                fields[name] = Draft(**draft)
        fields["frames"] = [list(f) for f in data["frames"]]
        return cls(**fields)


def _draft_to_dict(draft: Draft) -> dict[str, Any]:
    data = {name: getattr(draft, name) for name in Draft.__slots__}
    data["redactions"] = list(draft.redactions)
    data["path"] = [dict(p) for p in draft.path]
    return data


def apply(
    state: ActionState | None,
    event: Mapping[str, Any],
    cfg: ActionConfig,
    now_micros: int | None = None,
    redact: Redactor | None = None,
) -> tuple[ActionState, list[Action], list[Mapping[str, Any]]]:
    """Reduce one redacted capture event of the device.

    Returns ``(state, completed actions in order, late events)``; ``state`` is
    the argument mutated in place, or a new one when it was None. A duplicate
    returns no output and leaves the state unchanged. ``redact`` runs over
    merged typing text when a typing action closes.
    """
    out: list[Action] = []
    late: list[Mapping[str, Any]] = []
    state = _apply(state, event, cfg, wall_clock(event, now_micros), redact, out, late)
    return state, out, late


def apply_many(
    state: ActionState | None,
    events: Iterable[Mapping[str, Any]],
    cfg: ActionConfig,
    now_micros: int | None = None,
    redact: Redactor | None = None,
) -> tuple[ActionState | None, list[Action], list[Mapping[str, Any]]]:
    """``apply`` each event in turn; return the final state and all outputs in order."""
    out: list[Action] = []
    late: list[Mapping[str, Any]] = []
    for event in events:
        wall = now_micros if now_micros is not None else wall_clock(event, None)
        state = _apply(state, event, cfg, wall, redact, out, late)
    return state, out, late


def _apply(
    state: ActionState | None,
    event: Mapping[str, Any],
    cfg: ActionConfig,
    now: int,
    redact: Redactor | None,
    out: list[Action],
    late: list[Mapping[str, Any]],
) -> ActionState:
    """``apply`` with the event's wall-clock time given; outputs are appended."""
    if state is None:
        state = ActionState(
            org_id=str(event["org_id"]),
            subject_id=str(event["subject_id"]),
            device_id=str(event["device_id"]),
        )
    seq, ts = int(event["seq"]), int(event["ts"])
    ledger = state.ledger
    ranges = ledger.ranges
    if ranges and seq == ranges[-1][1] + 1:
        # the device's next seq, the usual case: above every range (so not a
        # duplicate) and extending the last one, as SeqLedger.add would
        ranges[-1][1] = seq
    else:
        if seq in ledger:
            if state.max_ts is None or ts <= state.max_ts:
                return state
            ledger.clear()  # a seq reused with a newer ts: the device renumbered
            state.max_seq = None
        ledger.add(seq, cfg.max_seq_ranges)
    if state.last_wall is None or now > state.last_wall:
        state.last_wall = now
    if state.max_ts is None or ts > state.max_ts:
        state.max_ts = ts
    payload = event["payload"]
    kind: str = payload["type"]
    if kind == "ScreenFrame":
        remember_frame(state.frames, ts, payload.get("ref"), cfg.frames_kept)
        _track_session(state, ts, kind, payload, cfg)
        return state
    if state.max_seq is not None and seq < state.max_seq:
        late.append(event)
        return state
    state.max_seq = seq
    session_start = _track_session(state, ts, kind, payload, cfg)
    _reduce(state, event, ts, kind, session_start, cfg, redact, out)
    return state


def _reduce(
    state: ActionState,
    event: Mapping[str, Any],
    ts: int,
    kind: str,
    session_start: int,
    cfg: ActionConfig,
    redact: Redactor | None,
    out: list[Action],
) -> None:
    """Fold one in-order, non-frame event; append the actions it completed to ``out``."""
    payload = event["payload"]
    app_name: str = event["app"]["app_name"]
    current = state.open
    if current is not None and (kind not in ("KeyInput", "Scroll") or current.app_name != app_name):
        _close_open(state, out, redact)
    if kind == "KeyInput":
        _reduce_key(state, event, ts, typed_payload(event), session_start, cfg, out, redact)
    elif kind == "Scroll":
        draft = _continue(state, "Scroll", ts, cfg.scroll_pause_micros, out, redact)
        if draft is None:
            draft = state.open = _draft(state, "scroll", event, ts, session_start)
        draft.dx += int(payload.get("dx", 0))
        draft.dy += int(payload.get("dy", 0))
        draft.absorb(event, ts)
    elif kind == "MouseMove":
        _extend_path(state, event, ts, payload.get("path") or [], session_start, cfg)
    elif kind == "MouseClick":
        out.append(_click(state, event, ts, payload, session_start, cfg))
    elif kind == "TerminalCommand":
        out.append(
            _single(state, "command", event, ts, session_start, command=payload.get("command"))
        )
    elif kind == "IdeEdit":
        out.append(_single(state, "edit", event, ts, session_start, text=payload.get("diff")))
    elif kind == "ActivityState" and payload.get("state") in _ENDS_SESSION:
        state.path = None


def on_timer(
    state: ActionState,
    now_micros: int,
    cfg: ActionConfig,
    redact: Redactor | None = None,
) -> tuple[ActionState, list[Action]]:
    """Flush a device quiet for ``quiet_micros`` of wall time: close the open action.

    A pointer path still waiting for a click is dropped. A device that is not
    quiet is returned unchanged with no output.
    """
    if state.last_wall is None or now_micros - state.last_wall < cfg.quiet_micros:
        return state, []
    out: list[Action] = []
    _close_open(state, out, redact)
    state.path = None
    return state, out


def _track_session(
    state: ActionState, ts: int, kind: str, payload: Mapping[str, Any], cfg: ActionConfig
) -> int:
    """Advance the arrival-order session estimate; return the start ts of this
    event's session (the hint is formatted only when an action starts, `_draft`)."""
    start, last = state.session_start, state.session_last
    if (
        start is None
        or last is None
        or (state.session_ended and ts > last)
        or ts - last > cfg.session_gap_micros
        or ts - start > cfg.session_max_length_micros
    ):
        state.session_start = start = ts
        state.session_ended = False
    if last is None or ts > last:
        state.session_last = ts
    if kind == "ActivityState" and payload.get("state") in _ENDS_SESSION:
        state.session_ended = True
    return start


def _reduce_key(
    state: ActionState,
    event: Mapping[str, Any],
    ts: int,
    payload: Mapping[str, Any],
    session_start: int,
    cfg: ActionConfig,
    out: list[Action],
    redact: Redactor | None,
) -> None:
    """Fold a KeyInput into the open typing action, or emit it as a shortcut."""
    chars, backspaces, chord = classify_key(payload)
    if chars is None and backspaces == 0:
        _close_open(state, out, redact)
        out.append(_single(state, "shortcut", event, ts, session_start, chord=chord))
        return
    draft = _continue(state, "KeyInput", ts, cfg.typing_pause_micros, out, redact)
    if draft is not None and len(draft.text) >= cfg.max_text_chars:
        _close_open(state, out, redact)
        draft = None
    if draft is None:
        draft = state.open = _draft(state, "typing", event, ts, session_start)
    content_missing = payload.get("key") is None and payload.get("text") is None
    if content_missing or payload.get("is_secure_field"):
        draft.withheld = True
    elif chars:
        draft.text += chars
    for _ in range(backspaces):
        if draft.text and draft.text[-1] != "\b":
            draft.text = draft.text[:-1]
        else:
            draft.text += "\b"
    draft.absorb(event, ts)


def _continue(
    state: ActionState,
    kind: str,
    ts: int,
    pause_micros: int,
    out: list[Action],
    redact: Redactor | None,
) -> Draft | None:
    """Return the open draft if an event of ``kind`` at ``ts`` continues it, else close it."""
    draft = state.open
    if draft is None:
        return None
    same_kind = (draft.kind == "typing") == (kind == "KeyInput")
    if same_kind and ts - draft.end_ts <= pause_micros:
        return draft
    _close_open(state, out, redact)
    return None


def _extend_path(
    state: ActionState,
    event: Mapping[str, Any],
    ts: int,
    points: list[dict[str, int]],
    session_start: int,
    cfg: ActionConfig,
) -> None:
    """Append a MouseMove path to the pending pointer path, or start a new one."""
    draft = state.path
    if (
        draft is None
        or ts - draft.end_ts > cfg.click_path_window_micros
        or len(draft.path) + len(points) > cfg.max_path_points
    ):
        draft = state.path = _draft(state, "path", event, ts, session_start)
    draft.end_ts = append_path(draft.path, draft.end_ts, points, ts)
    draft.absorb(event, ts)


def _click(
    state: ActionState,
    event: Mapping[str, Any],
    ts: int,
    payload: Mapping[str, Any],
    session_start: int,
    cfg: ActionConfig,
) -> Action:
    """Emit a MouseClick as a click or drag, carrying the pointer path that led to it."""
    x, y = int(payload["x"]), int(payload["y"])
    path, state.path = state.path, None
    if path is None or not path.path or ts - path.end_ts > cfg.click_path_window_micros:
        return _single(
            state, "click", event, ts, session_start, button=payload.get("button"), x=x, y=y
        )
    first = path.path[0]
    dragged = (
        ts - path.end_ts <= cfg.drag_max_pause_micros
        and distance(first["x"], first["y"], x, y) > cfg.drag_min_distance_px
    )
    path.absorb(event, ts)
    path.kind = "drag" if dragged else "click"
    app = event["app"]
    path.app_name, path.window_title = app["app_name"], app.get("window_title")
    return _emit(state, path, button=payload.get("button"), x=x, y=y, path=path.path)


def _single(
    state: ActionState,
    kind: str,
    event: Mapping[str, Any],
    ts: int,
    session_start: int,
    **fields: Any,
) -> Action:
    """Emit a one-event action."""
    draft = _draft(state, kind, event, ts, session_start)
    draft.absorb(event, ts)
    return _emit(state, draft, **fields)


def _draft(
    state: ActionState, kind: str, event: Mapping[str, Any], ts: int, session_start: int
) -> Draft:
    """Start a draft at ``event``; snapshot the observation before it."""
    obs_ts, obs_ref = frame_before(state.frames, ts)
    app = event["app"]
    return Draft(
        kind=kind,
        first_event_id=str(event["event_id"]),
        start_ts=ts,
        end_ts=ts,
        app_name=app["app_name"],
        window_title=app.get("window_title"),
        session_hint=f"{state.subject_id}:{state.device_id}:{session_start}",
        obs_ts=obs_ts,
        obs_ref=obs_ref,
    )


def _close_open(state: ActionState, out: list[Action], redact: Redactor | None) -> None:
    """Emit the open typing or scroll action, if any."""
    draft, state.open = state.open, None
    if draft is None:
        return
    if draft.kind == "scroll":
        out.append(_emit(state, draft, dx=draft.dx, dy=draft.dy))
        return
    text: str | None = None if draft.withheld else draft.text
    if text and redact is not None:
        text, rules = redact(text)
        if rules:  # most merged text has nothing to redact
            draft.redactions.extend(r for r in rules if r not in draft.redactions)
    out.append(_emit(state, draft, text=text))


def action_id(first_event_id: str) -> str:
    """Return ``str(uuid.uuid5(namespace, first_event_id))`` for the actions' namespace.

    The same digest and bit layout as `uuid.uuid5` (RFC 4122 version 5), built
    from the SHA-1 digest directly: `uuid.UUID`'s pure-Python constructor and
    ``__str__`` cost more than the hash, once per action.
    """
    digest = bytearray(sha1(_NAMESPACE_BYTES + first_event_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _emit(state: ActionState, draft: Draft, **fields: Any) -> Action:
    """Return the Action contract dict of a finished draft; ``fields`` fill kind-specific keys."""
    obs_ts, obs_ref = frame_before(state.frames, draft.start_ts)
    if obs_ts is None or (draft.obs_ts is not None and draft.obs_ts > obs_ts):
        obs_ref = draft.obs_ref
    action: Action = {
        "action_id": action_id(draft.first_event_id),
        "org_id": state.org_id,
        "subject_id": state.subject_id,
        "device_id": state.device_id,
        "session_hint": draft.session_hint,
        "kind": draft.kind,
        "start_ts": draft.start_ts,
        "end_ts": draft.end_ts,
        "text": None,
        "chord": None,
        "button": None,
        "x": None,
        "y": None,
        "path": [],
        "dx": 0,
        "dy": 0,
        "command": None,
        "app_name": draft.app_name,
        "window_title": draft.window_title,
        "observation_ref": obs_ref,
        "event_count": draft.event_count,
        "redactions": sorted(draft.redactions),
    }
    action.update(fields)
    return action
