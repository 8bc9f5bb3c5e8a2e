"""Validate, deduplicate, enforce consent and redact one batch of raw capture events.

The pure core of the route step: raw `capture.events` messages go in with the
consent view, the per-device dedup state and `now`; out come the clean events
for `capture.clean`, the dead letters for `capture.dlq` and the counted drops.
Imports nothing from faust or Kafka.

A message is a `DeviceBatch` or a single `CaptureEvent` (a batch of one):
`schemas.batch.decode_capture` expands it into its events, which then take
the steps below one by one, exactly as the same events sent as single
records would. A message that spoils as a whole (truncated, over the size
limit, undecodable, a header out of its domain) is one dead letter with the
record's bytes; an event refused inside a good batch (out of its domain, a
header mismatch, a repeated seq, an impossible time) is dead-lettered alone,
as a single CaptureEvent record with the batch's ``batch_id`` and its
``event_index`` in the headers, and its neighbours go on.

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
from typing import Any

from privacy.capture_hours import CaptureHours
from privacy.consent import ConsentPolicy, evaluate
from privacy.redaction import redact_event
from schemas.batch import DecodedBatch, RejectedEvent, decode_capture
from schemas.codec import CAPTURE_EVENT, encode
from schemas.dead_letter import DeadLetter
from schemas.errors import SchemaError, UnknownPayloadType
from streams.dedup import DeviceSeen
from streams.keystrokes import withhold_typed

MICROS = 1_000_000
SEQ_REGRESSION = "seq_regression"
"""Trail entry of an event that arrived after a higher seq of its device."""


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
    than `max_future_s` is impossible for a live capture and is dead-lettered."""

    max_past_s: int = 7 * 24 * 3600
    max_future_s: int = 300


@dataclass
class RouteResult:
    """What one batch became."""

    clean: list[dict[str, Any]] = field(default_factory=list)
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
    lo = now - config.max_past_s * MICROS
    hi = now + config.max_future_s * MICROS
    for msg in batch:
        result.records += 1
        try:
            decoded = decode_capture(msg.value)
        except SchemaError as err:
            result.dead.append(_dead(msg, err.reason, str(err)))
            result.outcomes.append(True)
            continue
        result.events += decoded.size
        if decoded.rejected:
            _route_with_rejects(msg, decoded, result, lo, hi, now, consent, hours, seen)
        else:
            single = decoded.header.single
            for index, event in enumerate(decoded.events):
                _route_event(msg, None if single else (decoded, index), event, result,
                             lo, hi, now, consent, hours, seen)
    return result


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
            _route_event(msg, (decoded, index), next(good), result, lo, hi, now,
                         consent, hours, seen)
            continue
        error = rejected.error
        result.dead.append(_dead_event(msg, decoded, index, rejected.event, error.reason,
                                       str(error)))
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


def _dead_for(msg: RawMessage, origin: tuple[DecodedBatch, int] | None, event: dict[str, Any],
              reason: str, error: str) -> DeadLetter:
    if origin is None:
        return _dead(msg, reason, error)
    return _dead_event(msg, origin[0], origin[1], event, reason, error)


def _dead(msg: RawMessage, reason: str, error: str) -> DeadLetter:
    return DeadLetter(reason, error, msg.topic, msg.partition, msg.offset, msg.key, msg.value)


def _dead_event(msg: RawMessage, decoded: DecodedBatch, index: int, event: dict[str, Any],
                reason: str, error: str) -> DeadLetter:
    """The dead letter of event ``index`` of a DeviceBatch: that event alone, as
    a single CaptureEvent record (the whole record's bytes if it cannot be
    written so), with the batch id and the index in its headers."""
    try:
        value = encode(CAPTURE_EVENT, event, check_domains=False)
    except SchemaError:
        value = msg.value
    return DeadLetter(reason, error, msg.topic, msg.partition, msg.offset, msg.key, value,
                      event_index=index, batch_id=decoded.header.batch_id)
