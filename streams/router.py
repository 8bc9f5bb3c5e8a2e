"""Validate, deduplicate, enforce consent and redact one batch of raw capture events.

The pure core of the route step: raw `capture.events` messages go in with the
consent view, the per-device dedup state and `now`; out come the clean events
for `capture.clean`, the dead letters for `capture.dlq` and the counted drops.
Imports nothing from faust or Kafka.

A message is a `DeviceBatch` or a single `CaptureEvent` (a batch of one):
`schemas.batch.decode_capture` expands it into its events, which then take
the steps below one by one, exactly as the same events sent as single
records would. A message that spoils as a whole (undecodable, a header that
does not read or is out of its domain, over the record ceiling) is one dead
letter with the record's bytes; an event refused inside a good batch (out of
its domain, a header mismatch, a repeated seq, an impossible time) is
dead-lettered alone, as a single CaptureEvent record with the batch's
``batch_id`` and its ``event_index`` in the headers, and its neighbours go
on. A batch cut off, or over the size limits, keeps the events read before
the cut or the limit (routed as above); its lost end is one dead letter
(``truncated_batch`` / ``batch_too_large``) with the record's bytes and the
lost indexes and seqs in its headers, counted by the dead-letter limit as
the events it lost, at most `RouteConfig.max_lost_weight` (one record alone
never stops the worker).

The per-batch path: a DeviceBatch whose events are all in time bounds, whose
seqs strictly increase and are all new (above the device's highest) or all
seen, whose subject is refused or has granted every content scope, and whose
org's capture hours (if any) hold for its first and last event alike, is
routed at once: those checks made once, its seqs recorded, each distinct
window title, command or diff redacted once per call of `route_batch` (they
repeat from one event and one record to the next; the memo of a call lives
only as long as the call). The outcome is the per-event
path's, event for event (tests/unit/streams/test_streams_router_fast.py);
any other record takes the per-event path. `RouteResult.groups` holds the
clean events by input record, one `CleanBatch` each.

Order of steps for each event (docs/architecture.md "Guarantees"):
decode → time sanity → duplicate check (and seq regression mark) → consent +
capture hours + minimisation → typed text withheld → normalisation + redaction.
Content never passes this step without the scope that allows it.

Typed text: a clean event keeps no typed text of its own (a KeyInput's ``text``
is None, a character key becomes a key class; see
:func:`streams.keystrokes.withhold_typed`). The typed content rides on the event
dict in memory only, for the action reducer, which redacts the merged burst: a
secret typed over several events is never stored per event.

Seq regressions: an event whose ``seq`` is below the highest seq the device has
passed on, and that is not a duplicate, is passed on with
:data:`SEQ_REGRESSION` in its ``redactions`` trail (so the ``events`` table shows
it) and counted per device in ``RouteResult.seq_regressions``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from privacy.capture_hours import CaptureHours, within_capture_hours
from privacy.consent import ConsentPolicy, evaluate
from privacy.minimisation import SECURE_FIELD_RULE
from privacy.redaction import REDACTED_FIELDS, Redacted, redact, redact_event
from privacy.scope import Scope
from schemas.batch import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    DecodedBatch,
    LostEvents,
    RejectedEvent,
    decode_capture,
)
from schemas.codec import CAPTURE_EVENT, encode
from schemas.dead_letter import DeadLetter
from schemas.errors import SchemaError, UnknownPayloadType
from streams.dedup import DeviceSeen
from streams.keystrokes import withhold_typed

MICROS = 1_000_000
SEQ_REGRESSION = "seq_regression"
"""Trail entry of an event that arrived after a higher seq of its device."""
_TS = itemgetter("ts")
_SEQ = itemgetter("seq")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One Kafka record as the router sees it."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class RouteConfig:
    """Bounds on event time: older than `max_past_s` or ahead of `now` by more
    than `max_future_s` is impossible for a live capture and is dead-lettered.
    Bounds on one record: the events of a batch past `max_batch_events` or
    ending past `max_batch_bytes` are dead-lettered (`schemas.batch.decode_capture`)."""

    max_past_s: int = 7 * 24 * 3600
    max_future_s: int = 300
    max_batch_events: int = MAX_BATCH_EVENTS
    max_batch_bytes: int = MAX_BATCH_BYTES
    #: What one record's lost end weighs in the dead-letter limit at most, in
    #: events: its count may be read from damaged bytes, and a single record (a
    #: client's batch of 11,000 events, a forged count) must not stop the worker,
    #: which would read it again after its restart and stop again. A run of
    #: such records still does (the limit stops at 1,000 rejected in a row).
    max_lost_weight: int = 100


@dataclass(frozen=True, slots=True)
class CleanGroup:
    """The clean events of one input record (one org, subject and device), in
    record order: one `CleanBatch` on capture.clean. ``batch_id`` is the
    record's (a single-event record's event_id)."""

    batch_id: str
    events: list[dict[str, Any]]


#: Every content scope: a batch whose subject granted all of them keeps its
#: content (nothing to minimise per event but secure-field keystrokes).
CONTENT_SCOPES = frozenset(
    {
        Scope.KEYSTROKE_CONTENT,
        Scope.WINDOW_TITLES,
        Scope.SCREEN_FRAMES,
        Scope.IDE_CONTENT,
        Scope.TERMINAL_CONTENT,
    }
)


@dataclass
class RouteResult:
    """What one batch became. ``clean`` holds every clean event, ``groups`` the
    same events grouped by input record; ``fast`` counts the records that took
    the per-batch path."""

    clean: list[dict[str, Any]] = field(default_factory=list)
    groups: list[CleanGroup] = field(default_factory=list)
    fast: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    drops: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    touched: dict[str, DeviceSeen] = field(default_factory=dict)
    # Per event (a message refused whole counts as one): True = rejected (DLQ).
    # The worker's dead-letter limit observes these.
    outcomes: list[bool] = field(default_factory=list)
    seq_regressions: Counter[str] = field(default_factory=Counter)  # by device_id
    records: int = 0  # messages routed
    events: int = 0  # events they held (those of messages refused whole not counted)


def route_batch(
    batch: Sequence[RawMessage],
    *,
    now: int,
    consent: Callable[[str], ConsentPolicy | None],
    hours: Callable[[str], CaptureHours | None],
    seen: Callable[[str], DeviceSeen],
    config: RouteConfig = RouteConfig(),
) -> RouteResult:
    """Route a batch of raw messages (in partition order), each a DeviceBatch or
    a single CaptureEvent, event by event in record order.

    `consent(subject_id)` and `hours(org_id)` look up the current policy and the
    org's capture hours; `seen(device_id)` returns the device's dedup state, which
    is updated in place and listed in `result.touched` for the caller to store
    (one write per device per batch). `now` is wall-clock micros. Never raises
    for bad input: that becomes a dead letter.
    """
    result = RouteResult()
    memo: dict[str, Redacted] = {}  # text -> its redaction, for `_route_fast`
    lo = now - config.max_past_s * MICROS
    hi = now + config.max_future_s * MICROS
    for msg in batch:
        result.records += 1
        try:
            decoded = decode_capture(
                msg.value, max_events=config.max_batch_events, max_bytes=config.max_batch_bytes
            )
        except SchemaError as err:
            result.dead.append(_dead(msg, err.reason, str(err)))
            result.outcomes.append(True)
            continue
        result.events += decoded.size
        start = len(result.clean)
        if decoded.rejected:
            _route_with_rejects(msg, decoded, result, lo, hi, now, consent, hours, seen)
        elif not decoded.header.single and _route_fast(
            decoded, result, lo, hi, consent, hours, seen, memo
        ):
            result.fast += 1
        else:
            single = decoded.header.single
            for index, event in enumerate(decoded.events):
                _route_event(
                    msg,
                    None if single else (decoded, index),
                    event,
                    result,
                    lo,
                    hi,
                    now,
                    consent,
                    hours,
                    seen,
                )
        if decoded.lost is not None:
            lost = decoded.lost
            lost_events = min(max(lost.count or 1, 1), config.max_batch_events)
            result.events += lost_events
            result.dead.append(_dead_lost(msg, decoded, lost))
            result.outcomes.extend([True] * min(lost_events, config.max_lost_weight))
        if len(result.clean) > start:
            result.groups.append(CleanGroup(decoded.header.batch_id, result.clean[start:]))
    return result


def _route_fast(
    decoded: DecodedBatch,
    result: RouteResult,
    lo: int,
    hi: int,
    consent: Callable[[str], ConsentPolicy | None],
    hours: Callable[[str], CaptureHours | None],
    seen: Callable[[str], DeviceSeen],
    memo: dict[str, Redacted],
) -> bool:
    """Route a whole DeviceBatch at once, with the per-event path's outcome, when
    it meets the fast path's conditions: every event in time bounds, seqs
    strictly increasing and either all new (above the device's highest) or all
    seen, and a policy that either refuses the subject or grants every content
    scope, with capture hours (if any) that hold for its first and last event
    alike. Returns False, having changed nothing, when a condition fails: the
    caller then routes the batch event by event. Mutates the decoded events
    (they are the caller's own). ``memo`` holds each text redacted so far in
    this call of `route_batch`, with its redaction."""
    events = decoded.events
    header = decoded.header
    # map/itemgetter and sorted(set()) run these per-record checks at C speed (a
    # generator over pairwise() cost more than all the other checks together)
    stamps = list(map(_TS, events))
    first_ts, last_ts = min(stamps), max(stamps)
    if first_ts < lo or last_ts > hi:
        return False
    seqs = list(map(_SEQ, events))
    if seqs != sorted(set(seqs)):  # not strictly increasing
        return False
    device = header.device_id
    state = result.touched.get(device)
    if state is None:
        state = result.touched[device] = seen(device)
    all_new = seqs[0] > state.max_seq
    if not all_new and not state.covers(seqs[0], seqs[-1]):
        return False
    policy = consent(header.subject_id)
    allowed = (
        policy is not None
        and Scope.ACTIVITY_METADATA in policy.scopes
        and policy.subject_id == header.subject_id
        and policy.org_id == header.org_id
    )
    window = hours(header.org_id)
    if allowed:
        assert policy is not None
        if not policy.scopes >= CONTENT_SCOPES:
            return False
        if window is not None and not _within_once(window, first_ts, last_ts):
            return False
    n = len(events)
    result.outcomes.extend([False] * n)
    if not all_new:
        result.drops["duplicate"] += n
        return True
    state.add_new(seqs)
    if not allowed:
        result.drops["no_consent"] += n
        return True
    assert policy is not None
    version = policy.version
    clean = result.clean
    fired = result.redactions
    for event in events:
        event["consent_version"] = version
        payload = event["payload"]
        if payload["type"] == "KeyInput":  # `withhold_typed` returns any other event as is
            if payload.get("is_secure_field") and (payload.get("key") or payload.get("text")):
                event["payload"] = {**payload, "key": None, "text": None}
                if SECURE_FIELD_RULE not in event["redactions"]:
                    event["redactions"].append(SECURE_FIELD_RULE)
            event = withhold_typed(event)
        out = _redact_memo(event, memo)
        for rule in out["redactions"]:
            fired[rule] += 1
        clean.append(out)
    return True


def _within_once(window: CaptureHours, first_ts: int, last_ts: int) -> bool:
    """True when every instant from ``first_ts`` to ``last_ts`` is inside ``window``:
    both ends inside a same-day window on one local date with no clock change
    between them (False also when it cannot tell so cheaply: a window across
    midnight, a clock change)."""
    if not window.start < window.end:
        return False
    if not (within_capture_hours(window, first_ts) and within_capture_hours(window, last_ts)):
        return False
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    zone = window.zone
    first = (epoch + timedelta(microseconds=first_ts)).astimezone(zone)
    last = (epoch + timedelta(microseconds=last_ts)).astimezone(zone)
    # one local date and one UTC offset (no clock change in between): the local
    # time runs forward from one end to the other, inside the window throughout
    return first.date() == last.date() and first.utcoffset() == last.utcoffset()


#: `REDACTED_FIELDS` by payload type, in their order: (the event's key holding
#: the field, the field). A type with no field of its own redacts the app's only.
_APP_FIELDS = tuple(("app", name) for container, name in REDACTED_FIELDS if container == "app")
_FIELDS_BY_TYPE = {
    ptype: tuple(
        ("app" if container == "app" else "payload", name)
        for container, name in REDACTED_FIELDS
        if container in ("app", ptype)
    )
    for ptype, _ in REDACTED_FIELDS
    if ptype != "app"
}


def _redact_memo(event: dict[str, Any], memo: dict[str, Redacted]) -> dict[str, Any]:
    """`privacy.redaction.redact_event`, each distinct text redacted once per
    ``memo`` (window titles and commands repeat from one event to the next).

    Shaped for the event in which nothing changes (nearly all): it looks only
    at the fields its payload type can hold and allocates nothing."""
    changes: list[tuple[str, str, Redacted]] | None = None
    for key, name in _FIELDS_BY_TYPE.get(event["payload"]["type"], _APP_FIELDS):
        value = event[key].get(name)
        if not isinstance(value, str) or not value:
            continue
        done = memo.get(value)
        if done is None:
            done = memo[value] = redact(value)
        if done.text != value:
            if changes is None:
                changes = []
            changes.append((key, name, done))
    if changes is None:
        return event
    out = dict(event)
    fired: list[str] = []
    for key, name, done in changes:
        if out[key] is event[key]:
            out[key] = dict(event[key])
        out[key][name] = done.text
        fired.extend(done.rules)
    trail = list(event.get("redactions") or [])
    trail.extend(rule for rule in dict.fromkeys(fired) if rule not in trail)
    out["redactions"] = trail
    return out


def _route_with_rejects(
    msg: RawMessage,
    decoded: DecodedBatch,
    result: RouteResult,
    lo: int,
    hi: int,
    now: int,
    consent: Callable[[str], ConsentPolicy | None],
    hours: Callable[[str], CaptureHours | None],
    seen: Callable[[str], DeviceSeen],
) -> None:
    """Route a batch holding refused events: each refused one dead-lettered at
    its index, the others routed, all in record order."""
    refused: dict[int, RejectedEvent] = {r.index: r for r in decoded.rejected}
    good = iter(decoded.events)
    for index in range(decoded.size):
        rejected = refused.get(index)
        if rejected is None:
            _route_event(
                msg, (decoded, index), next(good), result, lo, hi, now, consent, hours, seen
            )
            continue
        error = rejected.error
        result.dead.append(
            _dead_event(msg, decoded, index, rejected.event, error.reason, str(error))
        )
        result.outcomes.append(True)


def _route_event(
    msg: RawMessage,
    origin: tuple[DecodedBatch, int] | None,
    event: dict[str, Any],
    result: RouteResult,
    lo: int,
    hi: int,
    now: int,
    consent: Callable[[str], ConsentPolicy | None],
    hours: Callable[[str], CaptureHours | None],
    seen: Callable[[str], DeviceSeen],
) -> None:
    """Today's per-event route; ``origin`` is (batch, index) for an event of a
    DeviceBatch, None for a single-event record (dead-lettered as the record)."""
    ts = event["ts"]
    if not lo <= ts <= hi:
        error = f"ts {ts} outside [{lo}, {hi}] (now {now})"
        result.dead.append(_dead_for(msg, origin, event, "impossible_timestamp", error))
        result.outcomes.append(True)
        return
    result.outcomes.append(False)
    device = event["device_id"]
    state = result.touched.get(device)
    if state is None:
        state = result.touched[device] = seen(device)
    seq = event["seq"]
    regressed = seq < state.max_seq
    if state.seen(seq):
        result.drops["duplicate"] += 1
        return
    if regressed:
        result.seq_regressions[device] += 1
    try:
        decision = evaluate(event, consent(event["subject_id"]), hours(event["org_id"]))
    except UnknownPayloadType as err:
        result.dead.append(_dead_for(msg, origin, event, "invalid_field", str(err)))
        return
    if not decision.keep or decision.event is None:
        result.drops[decision.reason or "no_consent"] += 1
        return
    clean = redact_event(withhold_typed(decision.event))
    for rule in clean["redactions"]:
        result.redactions[rule] += 1
    if regressed:
        clean = {**clean, "redactions": [*clean["redactions"], SEQ_REGRESSION]}
    result.clean.append(clean)


def _dead_for(
    msg: RawMessage,
    origin: tuple[DecodedBatch, int] | None,
    event: dict[str, Any],
    reason: str,
    error: str,
) -> DeadLetter:
    if origin is None:
        return _dead(msg, reason, error)
    return _dead_event(msg, origin[0], origin[1], event, reason, error)


def _dead(msg: RawMessage, reason: str, error: str) -> DeadLetter:
    return DeadLetter.capped(
        reason, error, msg.topic, msg.partition, msg.offset, msg.key, msg.value
    )


def _dead_event(
    msg: RawMessage,
    decoded: DecodedBatch,
    index: int,
    event: dict[str, Any],
    reason: str,
    error: str,
) -> DeadLetter:
    """The dead letter of event ``index`` of a DeviceBatch: that event alone, as
    a single CaptureEvent record (the whole record's bytes if it cannot be
    written so), with the batch id and the index in its headers."""
    try:
        value = encode(CAPTURE_EVENT, event, check_domains=False)
    except SchemaError:
        value = msg.value
    return DeadLetter(
        reason,
        error,
        msg.topic,
        msg.partition,
        msg.offset,
        msg.key,
        value,
        event_index=index,
        batch_id=decoded.header.batch_id,
    )


def _dead_lost(msg: RawMessage, decoded: DecodedBatch, lost: LostEvents) -> DeadLetter:
    """The dead letter of a batch's lost end: the whole record, with the batch id,
    the first lost index, the lost count and seqs (when known) in its headers
    (an oversize record's bytes are not carried: `DeadLetter.capped`)."""
    return DeadLetter.capped(
        lost.reason,
        str(lost.error),
        msg.topic,
        msg.partition,
        msg.offset,
        msg.key,
        msg.value,
        batch_id=decoded.header.batch_id,
        lost_from=lost.first_index,
        lost_count=lost.count,
        lost_seqs=lost.seqs,
    )
