"""Device batches: the records of ``capture.events``, read and written.

A ``capture.events`` record is either a `DeviceBatch` (a header, then one
device's consecutive `CaptureEvent`s) or, as before batches existed, a single
`CaptureEvent`. `decode_capture` reads both the same way: a single event is a
batch of one. It separates what spoils the whole record (raised), what spoils
the rest of a batch from some event on (`DecodedBatch.lost`: the events before
it stand) and what spoils one event (returned by index, the rest of the batch
stands):

=========================  ======================  =================================
failure                    error (``.reason``)     scope
=========================  ======================  =================================
DeviceBatch over           `BatchTooLarge`         the events from the first one
`MAX_BATCH_BYTES` or       (batch_too_large)       past a limit on: the events that
`MAX_BATCH_EVENTS`                                 fit both limits stand (see below)
record over                `BatchTooLarge`         the record (never decoded)
`MAX_RECORD_BYTES`, or a
single CaptureEvent over
`MAX_BATCH_BYTES`
DeviceBatch body cut off   `TruncatedBatch`        the events from the first one
or corrupt                 (truncated_batch)       that does not read on: those
                                                   read completely before it stand
DeviceBatch header that    `TruncatedBatch`        the record (nothing to trust)
does not read, or no
event readable
header out of domain       `InvalidField`          the record
(no events, last < first)  (invalid_field)
not a capture record       `UnknownSchema` /       the record
                           `Undecodable`
event out of its domain    `InvalidField`          that event
event names another org,   `BatchHeaderMismatch`   that event
subject or device, or a    (batch_header_mismatch)
seq outside first..last
a seq already seen in      `DuplicateSeq`          that event (the first one stands)
the batch                  (duplicate_seq)
=========================  ======================  =================================

Cut-off batches: an Avro array has no per-item framing, so nothing after the
first event that does not read can be found again; `schemas.salvage` reads
the record step by step and keeps every event read completely before it.

Oversize batches: the limits protect the worker (memory and time per record),
and a batch over them still fits in a Kafka record. Rule: keep the longest
first part of the batch that would itself have been a batch within both
limits (a writer that respected them would have cut there), and lose the
rest. The decoder stops reading at the limit, so an oversize batch costs no
more than one at the limit; a record over `MAX_RECORD_BYTES` (the largest the
reader ever looks into) is refused unread.

Writers: `encode_batch` encodes dicts; `splice_batch` assembles a batch from
events already encoded one by one with `schemas.codec.encode_event` (the SDK
validates each event when it is captured, and splicing its bytes costs no
second encoding). Both use the current `DeviceBatch` version; its events are
the `CaptureEvent` version it pins, which must be the current one (a test
holds the two together).

Pure; never blocks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.canonical import parsing_canonical_form
from schemas.codec import CAPTURE_EVENT, HEADER_SIZE, Codec, Datum, default_codec
from schemas.domain import check_capture_event, check_device_batch
from schemas.errors import (
    BatchHeaderMismatch,
    BatchTooLarge,
    DuplicateSeq,
    InvalidField,
    SchemaDefinitionError,
    SchemaError,
    TruncatedBatch,
    Undecodable,
    UnknownSchema,
)
from schemas.salvage import read_prefix
from schemas.writer import encode_long

DEVICE_BATCH = "DeviceBatch"
#: The most events one record may hold; more is `BatchTooLarge`.
MAX_BATCH_EVENTS = 10_000
#: The most bytes of a record whose events are all kept (Kafka's default
#: ``message.max.bytes`` is about this); the events of a larger DeviceBatch that
#: end past it are lost as `BatchTooLarge`.
MAX_BATCH_BYTES = 1_048_576
#: The largest record `decode_capture` reads at all (a broker may be configured
#: for records this large); a larger one is refused whole, unread.
MAX_RECORD_BYTES = 8 * MAX_BATCH_BYTES
#: The header fields of a DeviceBatch, in schema order (``events`` follows them).
HEADER_FIELDS = (
    "batch_id",
    "org_id",
    "subject_id",
    "device_id",
    "client_version",
    "sent_ts",
    "first_seq",
    "last_seq",
)
_IDENTITY = ("org_id", "subject_id", "device_id")


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """What a record says about all of its events.

    For a single `CaptureEvent` record (``single``), the header is the event's
    own: ``batch_id`` is its ``event_id``, ``sent_ts`` its ``received_ts`` (or
    ``ts``), and both seqs its ``seq``.
    """

    batch_id: str
    org_id: str
    subject_id: str
    device_id: str
    client_version: str | None
    sent_ts: int
    first_seq: int
    last_seq: int
    single: bool = False


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """Event number ``index`` of a batch (0-based, in record order), refused alone.

    ``event`` is the event as decoded, for the dead letter; ``error.reason``
    is the typed reason.
    """

    index: int
    error: InvalidField
    event: Datum


@dataclass(frozen=True, slots=True)
class LostEvents:
    """The end of a DeviceBatch that was not kept: the events from index
    ``first_index`` (0-based, in record order) on.

    ``error`` is why (`TruncatedBatch` or `BatchTooLarge`, each with its
    ``.reason``); ``count`` how many events the record announced from there on
    (the smaller of what its array count and its header's seq range say; None
    when it does not say: the cut came before the array's count, or there was
    nothing but trailing bytes after the last event); ``seqs`` the
    inclusive seq range they lie in, when known: exactly for events decoded
    past the event limit, else the part of the header's ``first_seq..last_seq``
    above the last event read (events are in seq order).
    """

    error: TruncatedBatch | BatchTooLarge
    first_index: int
    count: int | None
    seqs: tuple[int, int] | None

    @property
    def reason(self) -> str:
        """The typed reason of the loss (the error's)."""
        return self.error.reason


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """One ``capture.events`` record read: its header, its good events in record
    order, its rejected events by index, and the end of the batch that was
    lost (``lost``; None when every event was read)."""

    header: BatchHeader
    events: list[Datum]
    rejected: list[RejectedEvent]
    lost: LostEvents | None = None

    @property
    def size(self) -> int:
        """How many events of the record were read (good and rejected; not the lost)."""
        return len(self.events) + len(self.rejected)


def decode_capture(
    data: bytes,
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
    codec: Codec | None = None,
) -> DecodedBatch:
    """Read one ``capture.events`` record, a `DeviceBatch` or a single `CaptureEvent`.

    Raises, for the record as a whole: `BatchTooLarge` (over `MAX_RECORD_BYTES`
    or ``max_bytes`` for a record not a DeviceBatch, or a DeviceBatch whose
    first event alone is over a limit), `TruncatedBatch` (a DeviceBatch whose
    header or first event does not read), `Undecodable` / `UnknownSchema`
    (not a capture record; another Candor record is `UnknownSchema`),
    `InvalidField` (a DeviceBatch header out of its domain, or the single
    CaptureEvent out of its domain: today's semantics for single records).
    Nothing else, for any input. A DeviceBatch over ``max_bytes`` or
    ``max_events``, or cut off after its first event, keeps the events read
    before the limit or the cut and names the rest in ``lost``. Per-event
    failures of a DeviceBatch are in ``rejected``.
    """
    codec = codec or default_codec()
    if not isinstance(data, bytes | bytearray | memoryview):  # a tombstone's None
        raise Undecodable(f"expected bytes, got {type(data).__name__}")
    size = len(data)
    if size > MAX_RECORD_BYTES:
        raise BatchTooLarge(f"{size} bytes, at most {MAX_RECORD_BYTES} read at all")
    if size > max_bytes:
        if codec.name_of(data) == DEVICE_BATCH:
            return _salvage(data, codec, max_events, max_bytes)
        raise BatchTooLarge(f"{size} bytes, at most {max_bytes}")
    try:
        name, datum = codec.decode(data)
    except Undecodable:
        if codec.name_of(data) == DEVICE_BATCH:
            return _salvage(data, codec, max_events, max_bytes)
        raise
    if name == CAPTURE_EVENT:
        seq = datum["seq"]
        received = datum["received_ts"]
        header = BatchHeader(
            batch_id=datum["event_id"],
            org_id=datum["org_id"],
            subject_id=datum["subject_id"],
            device_id=datum["device_id"],
            client_version=datum["client_version"],
            sent_ts=datum["ts"] if received is None else received,
            first_seq=seq,
            last_seq=seq,
            single=True,
        )
        return DecodedBatch(header, [datum], [])
    if name != DEVICE_BATCH:
        raise UnknownSchema(f"expected {DEVICE_BATCH} or {CAPTURE_EVENT}, got {name}")
    events: list[Datum] = datum["events"]
    header = BatchHeader(
        datum["batch_id"],
        datum["org_id"],
        datum["subject_id"],
        datum["device_id"],
        datum["client_version"],
        datum["sent_ts"],
        datum["first_seq"],
        datum["last_seq"],
    )
    if len(events) <= max_events:
        return _split(header, events)
    kept, past = events[:max_events], events[max_events:]
    seqs = [e["seq"] for e in past]
    error = BatchTooLarge(
        f"{len(events)} events, at most {max_events}: events {max_events}.. not kept"
    )
    lost = LostEvents(error, max_events, len(past), (min(seqs), max(seqs)))
    return _split(header, kept, lost)


def _salvage(data: bytes, codec: Codec, max_events: int, max_bytes: int) -> DecodedBatch:
    """A DeviceBatch that does not decode whole or is over ``max_bytes``: the
    events read before the cut or the limit, the rest in ``lost``."""
    writer = codec.registry.by_fingerprint(int.from_bytes(data[2:HEADER_SIZE], "little"))
    try:
        prefix = read_prefix(
            data, writer, codec.current(DEVICE_BATCH), max_end=max_bytes, max_events=max_events
        )
    except Undecodable as err:
        raise TruncatedBatch(str(err)) from err
    fields = prefix.header
    try:
        check_device_batch({**fields, "events": prefix.events or [None]})
    except SchemaError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidField("", f"{type(err).__name__}: {err}") from err
    header = BatchHeader(**{f: fields[f] for f in HEADER_FIELDS})
    events = prefix.events
    if prefix.limited:
        error: TruncatedBatch | BatchTooLarge = BatchTooLarge(
            f"{len(data)} bytes, {prefix.declared} events; at most {max_bytes} bytes and "
            f"{max_events} events: {prefix.stopped}"
        )
    else:
        error = TruncatedBatch(prefix.stopped or "the body does not read")
    if not events:
        raise error
    if prefix.complete:  # every event fits: only the array's end is past max_bytes
        return _split(header, events)
    count = None
    if prefix.declared > len(events):
        # two claims, the array's count and the header's seq range: a damaged
        # count can be anything, so the smaller stands (the DLQ limit weighs it)
        count = prefix.declared - len(events)
        span_left = header.last_seq - header.first_seq + 1 - len(events)
        if span_left > 0:
            count = min(count, span_left)
    last_read = events[-1]["seq"]
    seqs = (last_read + 1, header.last_seq) if last_read < header.last_seq else None
    return _split(header, events, LostEvents(error, len(events), count, seqs))


def _split(
    header: BatchHeader, events: list[Datum], lost: LostEvents | None = None
) -> DecodedBatch:
    """The events of a batch checked one by one: the good ones in record order,
    each refused one by index (`RejectedEvent`)."""
    if _all_pass(header, events):
        return DecodedBatch(header, events, [], lost)
    good: list[Datum] = []
    rejected: list[RejectedEvent] = []
    org, subject, device = header.org_id, header.subject_id, header.device_id
    first, last = header.first_seq, header.last_seq
    seen: set[int] = set()
    for index, event in enumerate(events):
        try:
            _check_event(event)
            if (
                event["org_id"] != org
                or event["subject_id"] != subject
                or event["device_id"] != device
            ):
                field = next(f for f in _IDENTITY if event[f] != getattr(header, f))
                claimed = getattr(header, field)
                raise BatchHeaderMismatch(
                    field, f"event's {event[field]!r:.80} in a batch of {claimed!r:.80}"
                )
            seq = event["seq"]
            if not first <= seq <= last:
                raise BatchHeaderMismatch("seq", f"{seq} outside the batch's {first}..{last}")
            if seq in seen:
                raise DuplicateSeq("seq", f"{seq} appears twice in batch {header.batch_id}")
            seen.add(seq)
        except InvalidField as err:
            rejected.append(RejectedEvent(index, err, event))
            continue
        good.append(event)
    return DecodedBatch(header, good, rejected, lost)


def _all_pass(header: BatchHeader, events: list[Datum]) -> bool:
    """True when `_split`'s per-event loop would refuse no event of ``events``.

    Nearly every batch is such, and this one pass costs less than that loop
    (one ``try`` for the batch; no per-event wrapper call, set or list).
    Strictly increasing seqs inside the header's range imply a seq range kept
    and no repeat; a batch whose seqs are merely distinct, or any failure at
    all, is left to the loop, which finds the same and says why. False never
    changes an outcome.
    """
    org, subject, device = header.org_id, header.subject_id, header.device_id
    previous, last = header.first_seq - 1, header.last_seq
    try:
        for event in events:
            seq = event["seq"]
            if (
                not previous < seq <= last
                or event["org_id"] != org
                or event["subject_id"] != subject
                or event["device_id"] != device
            ):
                return False
            previous = seq
            check_capture_event(event)
    except Exception:  # the loop in `_split` reports it, per event
        return False
    return True


def _check_event(event: Datum) -> None:
    try:
        check_capture_event(event)
    except SchemaError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidField("", f"{type(err).__name__}: {err}") from err


def batch_header(
    events: Sequence[Mapping[str, Any]],
    *,
    batch_id: str,
    sent_ts: int,
    client_version: str | None = None,
) -> dict[str, Any]:
    """The DeviceBatch header for ``events`` (one device's; identity from the
    first, seq range from all). Raises `InvalidField` for no events."""
    if not events:
        raise InvalidField("events", "a batch holds at least one event")
    seqs = [e["seq"] for e in events]
    first = events[0]
    return {
        "batch_id": batch_id,
        "org_id": first["org_id"],
        "subject_id": first["subject_id"],
        "device_id": first["device_id"],
        "client_version": client_version,
        "sent_ts": sent_ts,
        "first_seq": min(seqs),
        "last_seq": max(seqs),
    }


def encode_batch(
    header: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *, codec: Codec | None = None
) -> bytes:
    """A DeviceBatch record of ``header`` (the `HEADER_FIELDS`) and ``events``.

    Checks the header's and each event's types and domains (not the header's
    agreement with the events: `decode_capture` reports that, per event).
    Raises `InvalidField`, naming ``events[i]`` for a bad event.
    """
    codec = codec or default_codec()
    for index, event in enumerate(events):
        try:
            _check_event(dict(event))
        except InvalidField as err:
            raise err.within(f"events[{index}]") from None
    return codec.encode(DEVICE_BATCH, {**header, "events": list(events)})


def splice_batch(
    header: Mapping[str, Any], encoded_events: Sequence[bytes], *, codec: Codec | None = None
) -> bytes:
    """A DeviceBatch record of ``header`` and events already encoded as single
    `CaptureEvent` records (by `schemas.codec.encode_event`, which checked them).

    The same bytes `encode_batch` writes for the decoded events. Raises
    `InvalidField` for a header out of its domain, no events, or an event not
    written with the CaptureEvent version the batch pins.
    """
    codec = codec or default_codec()
    event_header = _pinned_event_header(codec)
    check_device_batch({**header, "events": encoded_events})
    head = codec.encode(DEVICE_BATCH, {**header, "events": []}, check_domains=False)
    out = bytearray(head)
    out.pop()  # the empty array's terminating 0: events are the last field
    encode_long(out, len(encoded_events))
    for index, encoded in enumerate(encoded_events):
        if encoded[:HEADER_SIZE] != event_header:
            raise InvalidField(
                f"events[{index}]", "not a CaptureEvent of the version DeviceBatch pins"
            )
        out += encoded[HEADER_SIZE:]
    out.append(0)
    return bytes(out)


@functools.cache
def _pinned_event_header(codec: Codec) -> bytes:
    """The single-object header of the CaptureEvent version DeviceBatch's events are."""
    batch = codec.current(DEVICE_BATCH)
    fields = batch.expanded["fields"]
    if fields[-1]["name"] != "events":
        raise SchemaDefinitionError(batch.fullname, "events must be the last field")
    items = fields[-1]["type"]["items"]
    form = parsing_canonical_form(items, batch.namespace)
    for version in codec.registry.versions(CAPTURE_EVENT):
        if version.canonical_form == form:
            return version.single_object_header
    raise SchemaDefinitionError(batch.fullname, "its events are no released CaptureEvent")
