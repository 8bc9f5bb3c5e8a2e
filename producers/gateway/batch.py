"""Turning a ``POST /v1/events`` body into Kafka records (pure; no I/O).

Contract of a batch:

* Clients send complete envelopes (the shared contract form, `event_id` and
  `seq` included; clients own both, so a retried batch carries the same
  event_ids and the pipeline deduplicates). The gateway overwrites
  `received_ts` with its own clock.
* JSON (``application/json``): ``{"events": [<envelope>, ...]}``.
  Avro (``application/vnd.candor.avro-batch``): see `producers.gateway.framing`.
* Identity is all-or-nothing: if any event names a device, subject or org
  other than the token's, the whole batch is refused (`Forbidden`
  "forged_device") and nothing is published.
* Validation is per event (partial acceptance): a valid event is published
  even when its neighbours are not; each invalid one is reported by index
  with a reason (`invalid_field`, `undecodable`, `unknown_schema`,
  `too_large`) and never published.
* On the wire the accepted events of a request become one `DeviceBatch`
  record per device (`device_batches`; identity makes that one device), in
  the request's order. A batch holds increasing seqs only: an event whose
  seq is not above its predecessor's starts the next batch, so that events
  sent out of order (or twice) reach the stream exactly as they would one
  by one (marked as seq regressions, dropped as duplicates). A request over
  the batch limits (`DEFAULT_BATCH_BYTES` of events, under the readers'
  `schemas.batch.MAX_BATCH_BYTES`; `MAX_BATCH_EVENTS`) is cut the same way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from producers.gateway.auth import DeviceIdentity
from producers.gateway.errors import BadRequest, Forbidden, UnsupportedMediaType
from producers.gateway.framing import AVRO_BATCH, split_frames
from schemas.batch import MAX_BATCH_EVENTS, splice_batch
from schemas.codec import decode_event, encode_event
from schemas.errors import SchemaError

JSON = "application/json"
DEFAULT_MAX_EVENTS = 1000
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
_IDENTITY = ("device_id", "subject_id", "org_id")
#: Bytes of encoded events per DeviceBatch record at most: half of the readers'
#: `MAX_BATCH_BYTES`, and under librdkafka's and the broker's ~1 MB record limit.
DEFAULT_BATCH_BYTES = 512 * 1024
#: Room kept in a batch for its header (ids, version, times) beside the events.
_HEADER_ROOM = 4096

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
    """One accepted event, encoded as a CaptureEvent: Kafka key (device_id),
    value, and what its batch header needs (seq, org, subject)."""

    index: int
    event_id: str
    key: bytes
    value: bytes
    seq: int = 0
    org_id: str = ""
    subject_id: str = ""


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One DeviceBatch record to produce: key (device_id), value, and the
    request indexes of the events it holds."""

    key: bytes
    value: bytes
    indexes: tuple[int, ...]


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
    body: bytes,
    content_type: str | None,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
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
    return Record(
        index,
        event_id,
        str(event["device_id"]).encode(),
        value,
        int(event["seq"]),
        str(event["org_id"]),
        str(event["subject_id"]),
    )


def device_batches(
    records: Sequence[Record],
    *,
    new_batch_id: Callable[[], str],
    sent_ts: int,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = DEFAULT_BATCH_BYTES,
) -> list[BatchRecord]:
    """The DeviceBatch records of one request's accepted `records`: one per
    device (and per org and subject, which identity makes one), events in
    the request's order; cut into consecutive batches where a seq does not
    increase or a batch would exceed ``max_events`` events or ``max_bytes``
    bytes. Pure apart from ``new_batch_id``."""
    groups: dict[tuple[bytes, str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.key, record.org_id, record.subject_id), []).append(record)
    out: list[BatchRecord] = []
    for (key, org_id, subject_id), group in groups.items():
        for chunk in _chunks(group, max_events, max_bytes - _HEADER_ROOM):
            header = {
                "batch_id": new_batch_id(),
                "org_id": org_id,
                "subject_id": subject_id,
                "device_id": key.decode(),
                "client_version": None,
                "sent_ts": sent_ts,
                "first_seq": chunk[0].seq,
                "last_seq": chunk[-1].seq,
            }
            value = splice_batch(header, [r.value for r in chunk])
            out.append(BatchRecord(key, value, tuple(r.index for r in chunk)))
    return out


def _chunks(records: list[Record], max_events: int, max_bytes: int) -> list[list[Record]]:
    chunks: list[list[Record]] = [[]]
    size = 0
    for record in records:
        current = chunks[-1]
        if current and (
            len(current) >= max_events
            or size + len(record.value) > max_bytes
            or record.seq <= current[-1].seq
        ):
            chunks.append([])
            current, size = chunks[-1], 0
        current.append(record)
        size += len(record.value)
    return chunks if chunks[0] else []


def _is_uuid(text: str) -> bool:
    if len(text) != 36:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
