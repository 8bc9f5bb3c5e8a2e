"""Turning a ``POST /v1/events`` body into Kafka records (pure; no I/O).

Contract of a batch:

* Clients send complete envelopes (the shared contract form, `event_id` and
  `seq` included; clients own both, so a retried batch carries the same
  event_ids and the pipeline deduplicates). The gateway overwrites
  `received_ts` with its own clock.
* JSON (``application/json``): ``{"events": [<envelope>, ...]}``.
  Avro (``application/vnd.candor.avro-batch``): see `producers.gateway_framing`.
* Identity is all-or-nothing: if any event names a device, subject or org
  other than the token's, the whole batch is refused (`Forbidden`
  "forged_device") and nothing is published.
* Validation is per event (partial acceptance): a valid event is published
  even when its neighbours are not; each invalid one is reported by index
  with a reason (`invalid_field`, `undecodable`, `unknown_schema`,
  `too_large`) and never published.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from producers.gateway_auth import DeviceIdentity
from producers.gateway_errors import BadRequest, Forbidden, UnsupportedMediaType
from producers.gateway_framing import AVRO_BATCH, split_frames
from schemas.codec import decode_event, encode_event
from schemas.errors import SchemaError

JSON = "application/json"
DEFAULT_MAX_EVENTS = 1000
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
_IDENTITY = ("device_id", "subject_id", "org_id")

Encoder = Callable[[Mapping[str, Any]], bytes]
Decoder = Callable[[bytes], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why event number `index` of a batch was not published."""

    index: int
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        """The entry of the response's ``rejected`` list."""
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Record:
    """One accepted event, encoded: Kafka key (device_id) and value."""

    index: int
    event_id: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What to publish and what to report of one batch."""

    total: int
    records: list[Record]
    rejected: list[Rejection]


def media_type(content_type: str | None) -> str:
    """The lower-case media type of a Content-Type header, parameters dropped."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(
    body: bytes, content_type: str | None, *, max_events: int = DEFAULT_MAX_EVENTS,
    decoder: Decoder = decode_event,
) -> list[dict[str, Any] | Rejection]:
    """The events of a body in order; an Avro message that does not decode is
    a `Rejection` in its place. Raises `UnsupportedMediaType`, or `BadRequest`
    ("bad_json", "bad_framing", "too_many_events", "empty_batch")."""
    kind = media_type(content_type)
    items: list[dict[str, Any] | Rejection]
    if kind == JSON:
        items = list(_json_events(body, max_events))
    elif kind == AVRO_BATCH:
        items = []
        for index, message in enumerate(split_frames(body, max_events)):
            try:
                items.append(decoder(message))
            except SchemaError as err:
                items.append(Rejection(index, err.reason, str(err)[:300]))
    else:
        raise UnsupportedMediaType(
            "unsupported_media_type", f"send {JSON} or {AVRO_BATCH}, not {kind or 'nothing'}"
        )
    if not items:
        raise BadRequest("empty_batch", "a batch needs at least one event")
    return items


def _json_events(body: bytes, max_events: int) -> list[dict[str, Any] | Rejection]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise BadRequest("bad_json", f"{type(err).__name__}: {err!s:.200}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BadRequest("bad_json", 'expected {"events": [...]}')
    events = document["events"]
    if len(events) > max_events:
        raise BadRequest("too_many_events", f"{len(events)} events, at most {max_events}")
    return [
        event if isinstance(event, dict) else Rejection(index, "invalid_field", "not an object")
        for index, event in enumerate(events)
    ]


def check_identity(items: list[dict[str, Any] | Rejection], identity: DeviceIdentity) -> None:
    """Raise `Forbidden` "forged_device" if any event claims a device, subject
    or org (as a string) other than `identity`'s. Fields that are missing or
    not strings are left for validation to reject."""
    for index, item in enumerate(items):
        if isinstance(item, Rejection):
            continue
        for field in _IDENTITY:
            claimed = item.get(field)
            if isinstance(claimed, str) and claimed != getattr(identity, field):
                raise Forbidden(
                    "forged_device", f"event {index}: {field} is not this token's {field}"
                )


def plan_batch(
    items: list[dict[str, Any] | Rejection],
    *,
    received_ts: int,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    encoder: Encoder = encode_event,
) -> BatchPlan:
    """Stamp `received_ts` into each event, validate and encode it. Never
    raises for bad events: each becomes a `Rejection`. Call `check_identity` first."""
    records: list[Record] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        if isinstance(item, Rejection):
            rejected.append(item)
            continue
        outcome = _prepare(index, item, received_ts, max_event_bytes, encoder)
        (records if isinstance(outcome, Record) else rejected).append(outcome)  # type: ignore[arg-type]
    return BatchPlan(len(items), records, rejected)


def _prepare(
    index: int, event: dict[str, Any], received_ts: int, max_bytes: int, encoder: Encoder
) -> Record | Rejection:
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not _is_uuid(event_id):
        return Rejection(index, "invalid_field", "event_id: expected a UUID string")
    try:
        value = encoder({**event, "received_ts": received_ts})
    except SchemaError as err:
        return Rejection(index, err.reason, str(err)[:300])
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as err:
        return Rejection(index, "invalid_field", f"{type(err).__name__}: {err!s:.200}")
    if len(value) > max_bytes:
        return Rejection(index, "too_large", f"{len(value)} bytes encoded, at most {max_bytes}")
    return Record(index, event_id, str(event["device_id"]).encode(), value)


def _is_uuid(text: str) -> bool:
    if len(text) != 36:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
