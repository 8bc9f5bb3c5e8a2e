"""The worker's table entry for one device: `DeviceActivity` as compact bytes.

The device table (and its changelog) holds one entry per device, rewritten
after every batch that touched it; a worker holds one entry per device of its
partitions, open sessions included (issue 12: 100,000 of them within 500 MB).
Each entry is

    b"\\x01" + JSON of positional arrays (no field names, no spaces)

- positional: each reducer state is an array in a fixed field order (the
  ``_*_row`` functions below are the layout); version 1 is this layout;
- once, at the top: the org, subject and device ids (a reducer state or a
  buffered event carrying the same id writes 0), and a base time, the newest
  event time the reducers took in: every other time is written relative to it
  (a few digits instead of sixteen);
- one buffer: the minute clock's reorder buffer, when it equals the session
  clock's (the usual case: both buffer the same events), is written as 0;
  a buffered event's ts and seq are differences to the event before, its
  kind and app 0 when they are the event before's.

A device with an open session of two clicks and a third one buffered (the
open-session input of ``bench/worker.py``) takes about 420 bytes here,
against about 1,500 bytes as `DeviceActivity.to_dict()` JSON and about
4,500 as the dicts the table held.
Decoding shares one string object per distinct id and app name of an entry,
and the minute clock's buffered marks with the session clock's (marks are
immutable): a decoded state is about 4.0 KB of objects, one folded from the
events 3.4 KB. `streams.state_cache` keeps such live objects for the devices
used last only.

Why this and not faust's RocksDB store (measured in ``docs/worker-state.md``):
faust-streaming 0.15.3 has no ``rocksdict://`` store URL (``rocksdb://``
uses the rocksdict driver when python-rocksdb is absent), and its store files
a write under the partition of the *current event* (``Store._set``), which is
wrong for a batch that spans partitions and fails (an assertion) for a write
made outside an event (after the batch's outputs were flushed, or by the
timer): the worker stopped with an AssertionError on its first batch. With
that patched to file each key under its own
partition, RocksDB still needs the live objects and the timer's notes, moves
only these entries off the heap and adds its memtables and block cache: 617 MB
at 100,000 open sessions, against 530 MB for the same code on faust's memory
store. Bytes in faust's memory store keep the partition bookkeeping
of `streams.changelog.DeviceTable` exact and need no new dependency.

Changelog compatibility: a deployment's changelog written before this format
holds faust's JSON of ``to_dict()`` (a record starting with ``{``);
`decode_state` reads those records (and a table still holding such dicts)
through `DeviceActivity.from_dict`, and the next write of the device stores
the new form. No reset is needed. A first byte other than ``{`` or 1 raises
`StateFormatError`.

Pure: no faust, no Kafka.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.actions import ActionState, Draft
from streams.activity import DeviceActivity
from streams.dedup import DeviceSeen
from streams.minutes import MinuteState, MinuteWindow
from streams.session import OpenSession, SessionState
from streams.watermark import EventClock, Mark, SeqLedger

#: The first byte of an entry in this module's format.
VERSION = 1
_VERSION_BYTE = bytes([VERSION])
_JSON_OBJECT = ord("{")  # faust's JSON of to_dict(): the format before VERSION 1
_SAME = 0  # "the id at the top" / "the session clock's buffer"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode
_loads = json.loads

Row = list[Any]


class StateFormatError(ValueError):
    """A table entry in no format this worker reads (a newer worker wrote it?)."""


def encode_state(state: DeviceActivity, memo: MarksMemo | None = None) -> bytes:
    """The table entry of `state` (this module's format). Never raises on a state
    the reducers built.

    ``memo``, kept per device by the caller across the entries it writes
    (`streams.state_cache`), lets the session's buffered marks that were written
    last time be copied as text instead of encoded again; the entry is the same
    bytes with or without it."""
    top = _top_of(state)
    s = state.session
    if memo is None or s is None or not s.clock.pending:
        return _VERSION_BYTE + _dumps(_activity_row(state, top)).encode()
    # The session row written by hand around the buffer's text, in the layout of
    # `_activity_row` / `_session_row` / `_clock_row` (a unit test holds them equal).
    c = s.clock
    head = _dumps(
        [
            [top.org, top.subject, top.device, top.base],
            state.seen.max_seq,
            state.seen.ranges,
            [
                _same(s.org_id, top.org),
                _same(s.subject_id, top.subject),
                _same(s.device_id, top.device),
                [_rel(c.max_ts, top), _rel(c.floor, top), _rel(c.last_wall, top)],
            ],
        ]
    )[:-3]  # "]]]": the clock's, the session's and the entry's lists stay open
    minutes = None if state.minutes is None else _minutes_row(state.minutes, top, c.pending)
    actions = None if state.actions is None else _actions_row(state.actions, top)
    text = (
        f"{head},{memo.text(c.pending, top)},{_dumps(_ledgers_row(c, top))}],"
        f"{_dumps(_open_row(s.open, top))}],{_dumps(minutes)},{_dumps(actions)}]"
    )
    return _VERSION_BYTE + text.encode()


def decode_state(data: bytes | Mapping[str, Any] | None) -> DeviceActivity:
    """The state of a table entry: this module's bytes, faust's JSON of
    ``to_dict()`` (bytes starting with ``{``) or that dict itself; an empty state
    for None or empty. Raises `StateFormatError` on anything else."""
    if not data:
        return DeviceActivity()
    if isinstance(data, Mapping):
        return DeviceActivity.from_dict(data)
    first = data[0]
    if first == VERSION:
        try:
            row = _loads(memoryview(data)[1:].tobytes())
            return _activity(row, {})
        except (ValueError, TypeError, IndexError, KeyError) as err:
            raise StateFormatError(f"a malformed device state: {err}") from err
    if first == _JSON_OBJECT:
        return DeviceActivity.from_dict(_loads(data))
    raise StateFormatError(f"device state format {first} is not one this worker reads")


@dataclass(frozen=True, slots=True)
class _Top:
    """What an entry writes once: the ids, and the time every other time is
    written relative to (the newest event time the device's reducers took in)."""

    org: str | None
    subject: str | None
    device: str | None
    base: int


# -- encoding ---------------------------------------------------------------------


def _top_of(state: DeviceActivity) -> _Top:
    s, m, a = state.session, state.minutes, state.actions
    times = [t for t in (s and s.clock.max_ts, m and m.clock.max_ts, a and a.max_ts) if t]
    base = max(times, default=0)
    for part in (s, a):
        if part is not None:
            return _Top(part.org_id, part.subject_id, part.device_id, base)
    if m is not None:
        return _Top(m.org_id, m.subject_id, None, base)
    return _Top(None, None, None, base)


def _same(value: Any, top: Any) -> Any:
    return _SAME if value == top and value is not None else value


def _rel(t: int | None, top: _Top) -> int | None:
    return None if t is None else t - top.base


def _activity_row(state: DeviceActivity, top: _Top) -> Row:
    session_pending = None if state.session is None else state.session.clock.pending
    return [
        [top.org, top.subject, top.device, top.base],
        state.seen.max_seq,
        state.seen.ranges,
        None if state.session is None else _session_row(state.session, top),
        None if state.minutes is None else _minutes_row(state.minutes, top, session_pending),
        None if state.actions is None else _actions_row(state.actions, top),
    ]


def _clock_row(clock: EventClock, top: _Top, pending: Any) -> Row:
    return [
        _rel(clock.max_ts, top),
        _rel(clock.floor, top),
        _rel(clock.last_wall, top),
        pending,
        _ledgers_row(clock, top),
    ]


def _ledgers_row(clock: EventClock, top: _Top) -> Row:
    return [[_same(d, top.device), ledger.ranges] for d, ledger in clock.ledgers.items()]


def _marks(marks: Sequence[Mark], top: _Top, before: Mark | None = None) -> Row:
    """Buffered marks (in ts order): each ts and seq as the difference to the
    mark before (the first ts to the base), its kind and app as 0 when they are
    the mark before's. ``before``: the mark before the first one (when these
    continue a buffer; `MarksMemo`).

    Written out inline (tuples, no helper calls): a device's buffer holds the
    last grace period's events (hundreds at 10-25 events/s) and is written
    after every batch that touches the device, so this loop is the larger part
    of a snapshot. Tuples encode as the same JSON arrays as lists."""
    rows: Row = []
    append = rows.append
    device = top.device
    ts, seq = top.base, 0
    kind: str | None = None
    app: str | None = None
    if before is not None:
        ts, seq, kind, app = before.ts, before.seq, before.kind, before.app
    for m_ts, m_device, m_seq, m_kind, m_app, qty, state in marks:
        append(
            (
                m_ts - ts,
                _SAME if m_device == device and m_device is not None else m_device,
                m_seq - seq,
                _SAME if m_kind == kind and m_kind is not None else m_kind,
                _SAME if m_app == app and m_app is not None else m_app,
                qty,
                state,
            )
        )
        ts, seq, kind, app = m_ts, m_seq, m_kind, m_app
    return rows


class MarksMemo:
    """The text of one device's session buffer as its last entry wrote it, in
    runs (the marks of one write and their JSON rows), so that the next entry
    encodes only the marks that are new, not the whole buffer again.

    A buffer changes at its ends between two writes: the watermark releases
    marks from the front, a batch adds marks at the back. A mark's row depends
    only on the mark and the one before it (and the device id), so a run whose
    marks and predecessor are unchanged keeps its text. The first mark's row
    depends on the entry's base time and is written anew each time. Runs are
    matched by value (list equality): a buffer changed any other way (a mark
    inserted in the middle, a state from elsewhere) is encoded from the first
    mark that differs."""

    __slots__ = ("device", "first", "runs")

    #: Marks per run at most: a run the watermark released part of is written
    #: again from its first mark still buffered, so a run stays small.
    RUN_MARKS = 32
    #: Runs beyond which adjacent small ones are joined (up to `RUN_MARKS` marks).
    MAX_RUNS = 32

    def __init__(self) -> None:
        self.device: str | None = None
        self.first: Mark | None = None  # the buffer's first mark, written anew each time
        self.runs: list[tuple[list[Mark], str]] = []  # the marks after it

    def text(self, pending: list[Mark], top: _Top) -> str:
        """The JSON text of `_marks(pending, top)`; remembers it for the next call."""
        if self.device != top.device:
            self.device, self.first, self.runs = top.device, None, []
        first = pending[0]
        parts = [_dumps(_marks(pending[:1], top))[1:-1]]
        runs: list[tuple[list[Mark], str]] = []
        at = 1  # the next mark of `pending` to write
        old = self.runs
        if first == self.first:  # nothing released since: every run may still follow
            rest: list[Mark] = []
            k = -1
        else:
            k = 0
            while k < len(old) and first not in old[k][0]:
                k += 1  # released by the watermark since
            rest = old[k][0][old[k][0].index(first) + 1 :] if k < len(old) else []
        if k < len(old) and pending[at : at + len(rest)] == rest:
            if rest:  # the run's first rows followed marks released since
                runs += _runs(rest, top, first)
                at += len(rest)
            for marks, text in old[k + 1 :]:
                if pending[at : at + len(marks)] != marks:
                    break
                runs.append((marks, text))
                at += len(marks)
        if at < len(pending):
            runs += _runs(pending[at:], top, pending[at - 1])
        if len(runs) > self.MAX_RUNS:
            runs = _joined(runs)
        self.first, self.runs = first, runs
        parts += [text for _, text in runs]
        return "[" + ",".join(parts) + "]"


def _runs(marks: list[Mark], top: _Top, before: Mark) -> list[tuple[list[Mark], str]]:
    """`MarksMemo` runs of ``marks`` (following ``before``), `MarksMemo.RUN_MARKS` at most each."""
    size = MarksMemo.RUN_MARKS
    runs = []
    for i in range(0, len(marks), size):
        chunk = marks[i : i + size]
        runs.append((chunk, _dumps(_marks(chunk, top, before if i == 0 else marks[i - 1]))[1:-1]))
    return runs


def _joined(runs: list[tuple[list[Mark], str]]) -> list[tuple[list[Mark], str]]:
    """Adjacent runs joined while they stay within `MarksMemo.RUN_MARKS` marks."""
    out: list[tuple[list[Mark], str]] = []
    for marks, text in runs:
        if out and len(out[-1][0]) + len(marks) <= MarksMemo.RUN_MARKS:
            last_marks, last_text = out[-1]
            out[-1] = (last_marks + marks, f"{last_text},{text}")
        else:
            out.append((marks, text))
    return out


def _session_row(s: SessionState, top: _Top) -> Row:
    return [
        _same(s.org_id, top.org),
        _same(s.subject_id, top.subject),
        _same(s.device_id, top.device),
        _clock_row(s.clock, top, _marks(s.clock.pending, top)),
        _open_row(s.open, top),
    ]


def _open_row(o: OpenSession | None, top: _Top) -> Row | None:
    if o is None:
        return None
    return [
        o.start_ts - top.base,
        o.last_ts - top.base,
        o.last_app,
        o.active_micros,
        o.app_micros,
        o.event_counts,
        o.keystrokes,
        o.clicks,
        o.scrolls,
        o.commands_run,
        o.mouse_distance_px,
        o.events,
        o.ending,
    ]


def _minutes_row(m: MinuteState, top: _Top, session_pending: Any) -> Row:
    pending = m.clock.pending
    same = bool(pending) and pending == session_pending
    return [
        _same(m.org_id, top.org),
        _same(m.subject_id, top.subject),
        _clock_row(m.clock, top, _SAME if same else _marks(pending, top)),
        [
            [
                start - top.base,
                w.keys,
                w.clicks,
                w.scrolls,
                w.mouse_distance_px,
                w.active_micros,
                w.app_micros,
                w.events,
            ]
            for start, w in m.windows.items()
        ],
        _rel(m.anchor_ts, top),
        m.anchor_app,
    ]


def _draft_row(d: Draft, top: _Top) -> Row:
    return [
        d.kind,
        d.first_event_id,
        d.start_ts - top.base,
        d.end_ts - top.base,
        d.app_name,
        d.window_title,
        d.session_hint,
        _rel(d.obs_ts, top),
        d.obs_ref,
        d.event_count,
        d.redactions,
        d.text,
        d.withheld,
        d.dx,
        d.dy,
        d.path,
    ]


def _actions_row(a: ActionState, top: _Top) -> Row:
    return [
        _same(a.org_id, top.org),
        _same(a.subject_id, top.subject),
        _same(a.device_id, top.device),
        a.ledger.ranges,
        a.max_seq,
        _rel(a.max_ts, top),
        _rel(a.last_wall, top),
        None if a.open is None else _draft_row(a.open, top),
        None if a.path is None else _draft_row(a.path, top),
        [[int(ts) - top.base, ref] for ts, ref in a.frames],
        _rel(a.session_start, top),
        _rel(a.session_last, top),
        a.session_ended,
    ]


# -- decoding ---------------------------------------------------------------------


def _text(value: str, memo: dict[str, str]) -> str:
    """One string object per distinct value within an entry (ids, app names)."""
    return memo.setdefault(value, value)


def _id(value: Any, top: str | None, memo: dict[str, str]) -> str:
    if value == _SAME and top is not None:
        return top
    if not isinstance(value, str):
        raise StateFormatError(f"an id {value!r} where a string was expected")
    return _text(value, memo)


def _abs(t: int | None, top: _Top) -> int | None:
    return None if t is None else t + top.base


def _activity(row: Row, memo: dict[str, str]) -> DeviceActivity:
    (org, subject, device, base), max_seq, ranges, session_row, minutes_row, actions_row = row
    top = _Top(
        None if org is None else _text(org, memo),
        None if subject is None else _text(subject, memo),
        None if device is None else _text(device, memo),
        int(base),
    )
    session = None if session_row is None else _session(session_row, top, memo)
    pending = None if session is None else session.clock.pending
    return DeviceActivity(
        seen=DeviceSeen(max_seq, ranges),
        session=session,
        minutes=None if minutes_row is None else _minutes(minutes_row, top, memo, pending),
        actions=None if actions_row is None else _actions(actions_row, top, memo),
    )


def _clock(row: Row, top: _Top, memo: dict[str, str], pending: list[Mark]) -> EventClock:
    max_ts, floor, last_wall, _pending, ledgers = row
    return EventClock(
        max_ts=_abs(max_ts, top),
        floor=_abs(floor, top),
        last_wall=_abs(last_wall, top),
        pending=pending,
        ledgers={_id(d, top.device, memo): SeqLedger(ranges) for d, ranges in ledgers},
    )


def _marks_of(rows: Row, top: _Top, memo: dict[str, str]) -> list[Mark]:
    marks: list[Mark] = []
    ts, seq = top.base, 0
    kind = app = ""
    for d_ts, d, d_seq, k, a, qty, state in rows:
        ts += d_ts
        seq += d_seq
        if k != _SAME:
            kind = sys.intern(k)
        if a != _SAME:
            app = _text(a, memo)
        marks.append(
            Mark(
                ts,
                _id(d, top.device, memo),
                seq,
                kind,
                app,
                float(qty),
                None if state is None else sys.intern(state),
            )
        )
    return marks


def _session(row: Row, top: _Top, memo: dict[str, str]) -> SessionState:
    org, subject, device, clock_row, open_row = row
    clock = _clock(clock_row, top, memo, _marks_of(clock_row[3], top, memo))
    opened = None
    if open_row is not None:
        (start, last, app, active, app_micros, counts, keys, clicks, scrolls, cmds, dist) = (
            open_row[:11]
        )
        events, ending = open_row[11], open_row[12]
        opened = OpenSession(
            start_ts=start + top.base,
            last_ts=last + top.base,
            last_app=_text(app, memo),
            active_micros=active,
            app_micros={_text(k, memo): v for k, v in app_micros.items()},
            event_counts={sys.intern(k): v for k, v in counts.items()},
            keystrokes=keys,
            clicks=clicks,
            scrolls=scrolls,
            commands_run=cmds,
            mouse_distance_px=float(dist),
            events=events,
            ending=ending,
        )
    return SessionState(
        org_id=_id(org, top.org, memo),
        subject_id=_id(subject, top.subject, memo),
        device_id=_id(device, top.device, memo),
        clock=clock,
        open=opened,
    )


def _minutes(
    row: Row, top: _Top, memo: dict[str, str], session_pending: list[Mark] | None
) -> MinuteState:
    org, subject, clock_row, windows, anchor_ts, anchor_app = row
    marks = clock_row[3]
    if marks == _SAME:
        if session_pending is None:
            raise StateFormatError("a minute buffer shared with a session that is not there")
        pending = list(session_pending)  # the same immutable marks, a list of its own
    else:
        pending = _marks_of(marks, top, memo)
    return MinuteState(
        org_id=_id(org, top.org, memo),
        subject_id=_id(subject, top.subject, memo),
        clock=_clock(clock_row, top, memo, pending),
        windows={
            start + top.base: MinuteWindow(
                keys=keys,
                clicks=clicks,
                scrolls=scrolls,
                mouse_distance_px=float(dist),
                active_micros=active,
                app_micros={_text(k, memo): v for k, v in app_micros.items()},
                events=events,
            )
            for start, keys, clicks, scrolls, dist, active, app_micros, events in windows
        },
        anchor_ts=_abs(anchor_ts, top),
        anchor_app=None if anchor_app is None else _text(anchor_app, memo),
    )


def _draft(row: Row, top: _Top, memo: dict[str, str]) -> Draft:
    (kind, first, start, end, app, title, hint, obs_ts, obs_ref, count) = row[:10]
    redactions, text, withheld, dx, dy, path = row[10:]
    return Draft(
        kind=sys.intern(kind),
        first_event_id=first,
        start_ts=start + top.base,
        end_ts=end + top.base,
        app_name=_text(app, memo),
        window_title=title,
        session_hint=hint,
        obs_ts=_abs(obs_ts, top),
        obs_ref=obs_ref,
        event_count=count,
        redactions=redactions,
        text=text,
        withheld=withheld,
        dx=dx,
        dy=dy,
        path=path,
    )


def _actions(row: Row, top: _Top, memo: dict[str, str]) -> ActionState:
    org, subject, device, ledger, max_seq, max_ts, last_wall, open_row, path_row = row[:9]
    frames, session_start, session_last, session_ended = row[9:]
    return ActionState(
        org_id=_id(org, top.org, memo),
        subject_id=_id(subject, top.subject, memo),
        device_id=_id(device, top.device, memo),
        ledger=SeqLedger(ledger),
        max_seq=max_seq,
        max_ts=_abs(max_ts, top),
        last_wall=_abs(last_wall, top),
        open=None if open_row is None else _draft(open_row, top, memo),
        path=None if path_row is None else _draft(path_row, top, memo),
        frames=[[ts + top.base, ref] for ts, ref in frames],
        session_start=_abs(session_start, top),
        session_last=_abs(session_last, top),
        session_ended=session_ended,
    )
