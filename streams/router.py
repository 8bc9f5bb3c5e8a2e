"""Validate, deduplicate, enforce consent and redact one batch of raw capture events.

The pure core of the route step: raw `capture.events` messages go in with the
consent view, the per-device dedup state and `now`; out come the clean events
for `capture.clean`, the dead letters for `capture.dlq` and the counted drops.
Imports nothing from faust or Kafka.

Order of steps for each message (DESIGN.md "Guarantees"):
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
from privacy.minimisation import UnknownPayloadType
from privacy.redaction import redact_event
from schemas.codec import decode_many
from schemas.errors import SchemaError
from streams.dedup import DeviceSeen
from streams.dlq import DeadLetter
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
    outcomes: list[bool] = field(default_factory=list)  # per input: True = rejected (DLQ)
    seq_regressions: Counter[str] = field(default_factory=Counter)  # by device_id


def route_batch(
    batch: Sequence[RawMessage],
    *,
    now: int,
    consent: Callable[[str], ConsentPolicy | None],
    hours: Callable[[str], CaptureHours | None],
    seen: Callable[[str], DeviceSeen],
    config: RouteConfig = RouteConfig(),
) -> RouteResult:
    """Route a batch of raw messages (in partition order).

    `consent(subject_id)` and `hours(org_id)` look up the current policy and the
    org's capture hours; `seen(device_id)` returns the device's dedup state, which
    is updated in place and listed in `result.touched` for the caller to store
    (one write per device per batch). `now` is wall-clock micros. Never raises
    for bad input: that becomes a dead letter.
    """
    result = RouteResult()
    decoded = decode_many([m.value for m in batch])
    lo = now - config.max_past_s * MICROS
    hi = now + config.max_future_s * MICROS
    for msg, event in zip(batch, decoded, strict=True):
        if isinstance(event, SchemaError):
            result.dead.append(_dead(msg, event.reason, str(event)))
            result.outcomes.append(True)
            continue
        ts = event["ts"]
        if not lo <= ts <= hi:
            result.dead.append(_dead(msg, "impossible_timestamp",
                                     f"ts {ts} outside [{lo}, {hi}] (now {now})"))
            result.outcomes.append(True)
            continue
        result.outcomes.append(False)
        device = event["device_id"]
        state = result.touched.get(device)
        if state is None:
            state = result.touched[device] = seen(device)
        seq = event["seq"]
        regressed = seq < state.max_seq
        if state.seen(seq):
            result.drops["duplicate"] += 1
            continue
        if regressed:
            result.seq_regressions[device] += 1
        try:
            decision = evaluate(event, consent(event["subject_id"]), hours(event["org_id"]))
        except UnknownPayloadType as err:
            result.dead.append(_dead(msg, "invalid_field", str(err)))
            continue
        if not decision.keep or decision.event is None:
            result.drops[decision.reason or "no_consent"] += 1
            continue
        clean = redact_event(withhold_typed(decision.event))
        for rule in clean["redactions"]:
            result.redactions[rule] += 1
        if regressed:
            clean = {**clean, "redactions": [*clean["redactions"], SEQ_REGRESSION]}
        result.clean.append(clean)
    return result


def _dead(msg: RawMessage, reason: str, error: str) -> DeadLetter:
    return DeadLetter(reason, error, msg.topic, msg.partition, msg.offset, msg.key, msg.value)
