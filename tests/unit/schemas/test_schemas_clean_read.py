"""`schemas.clean_read.read_clean_batch` returns the codec's datum or nothing.

On random CleanBatches (every payload type, optional fields null or set,
strings short and long, integers up to 64 bits) it gives what
`schemas.codec.decode` gives, keys in the same order; on their truncations and
changed bytes it gives that datum or None (the codec then decides), never a
datum the codec would not return.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import codec, domain
from schemas.clean_read import WRITTEN_FOR, _long, _Unread, read_clean_batch
from schemas.errors import SchemaError
from schemas.writer import encode_long
from tests.unit.schemas.schemas_samples import PAYLOADS, event

EQUIVALENCE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# The batches drawn are in their domain (`test_a_value_out_of_its_domain...`
# takes them out). Longs up to 62 bits: a varint of 9 bytes at most (10 bytes
# are left to the codec).
LONGS = st.one_of(st.integers(0, 200), st.integers(0, 2**62 - 1), st.just(2**62 - 1))
SIGNED = st.one_of(st.integers(-70, 70), st.integers(-(2**62), 2**62 - 1))
INTS = st.one_of(st.integers(-70, 70), st.integers(-(2**31), 2**31 - 1))
COUNTS = st.one_of(st.integers(0, 70), st.integers(0, 2**31 - 1))
TEXT = st.one_of(st.text(max_size=8), st.text(min_size=60, max_size=200))


MODIFIERS = ["ctrl", "alt", "shift", "meta"]
DOMAIN_DIGEST = "1a944ff60d1db8af"


def _maybe(draw: st.DrawFn, value: st.SearchStrategy[Any]) -> Any:
    return draw(st.one_of(st.none(), value))


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(PAYLOADS)))
    payload = dict(PAYLOADS[kind])
    if kind == "KeyInput":
        payload.update(
            key=_maybe(draw, TEXT),
            text=_maybe(draw, TEXT),
            modifiers=draw(st.lists(st.sampled_from(MODIFIERS), max_size=4, unique=True)),
            is_secure_field=draw(st.booleans()),
            count=draw(COUNTS.filter(lambda n: n > 0)),
        )
    elif kind == "MouseMove":
        point = st.fixed_dictionaries({"dt_ms": COUNTS, "x": INTS, "y": INTS})
        payload["path"] = draw(st.lists(point, max_size=70))
    elif kind == "MouseClick":
        payload.update(button=draw(st.sampled_from(["left", "right", "middle"])), x=draw(INTS))
    elif kind == "ScreenFrame":
        payload.update(frame_id=draw(TEXT), phash=draw(TEXT), width=draw(COUNTS))
    elif kind == "IdeEdit":
        payload.update(diff=_maybe(draw, TEXT), chars_deleted=draw(COUNTS))
    elif kind == "TerminalCommand":
        payload.update(command=draw(TEXT), exit_code=_maybe(draw, INTS))
    elif kind == "ActivityState":
        payload["state"] = draw(st.sampled_from(["active", "idle", "locked"]))
    elif kind == "WindowFocus":
        payload["previous_app_name"] = _maybe(draw, TEXT)
    return payload


@st.composite
def clean_batches(draw: st.DrawFn) -> dict[str, Any]:
    org, subject, device = draw(TEXT), draw(TEXT), draw(TEXT)
    events = []
    for _ in range(draw(st.integers(1, 6))):
        ev = event(org_id=org, subject_id=subject, device_id=device, event_id=draw(TEXT))
        ev.update(seq=draw(LONGS), ts=draw(LONGS), received_ts=_maybe(draw, LONGS))
        ev.update(consent_version=_maybe(draw, LONGS), client_version=_maybe(draw, TEXT))
        ev["app"] = {
            "app_name": draw(TEXT),
            "window_title": _maybe(draw, TEXT),
            "url_host": _maybe(draw, TEXT),
        }
        ev["payload"] = draw(payloads())
        ev["redactions"] = draw(st.lists(TEXT, max_size=3))
        events.append(ev)
    sealed = draw(st.booleans())
    first_seq = draw(LONGS)
    return {
        "batch_id": draw(TEXT),
        "org_id": org,
        "subject_id": subject,
        "device_id": device,
        "first_seq": first_seq,
        "last_seq": min(first_seq + draw(st.integers(0, 2**40)), 2**62 - 1),
        "key_id": draw(TEXT) if sealed else None,
        "content": draw(st.binary(max_size=80)) if sealed else None,
        "events": events,
    }


def _encoded(batch: dict[str, Any]) -> bytes:
    # no domain check on the way in: the reader must leave out-of-domain
    # batches (a negative seq, a count of 0) to the codec, which refuses them
    return codec.encode("CleanBatch", batch, check_domains=False)


def _same_as_the_codec(data: bytes) -> None:
    mine = read_clean_batch(data)
    try:
        name, datum = codec.decode(data)
    except SchemaError:
        assert mine is None
        return
    if mine is not None:
        assert name == "CleanBatch"
        # repr: the same values of the same types, keys in the same order
        assert repr(mine) == repr(datum)


def test_it_reads_the_current_version() -> None:
    # A new CleanBatch (or CaptureEvent) version changes this: schemas/clean_read.py
    # must then be written for it (until then the sinks decode with the codec).
    assert codec.default_codec().current("CleanBatch").single_object_header == WRITTEN_FOR


def test_the_domain_checks_it_mirrors_are_the_codec_s() -> None:
    # schemas/clean_read.py holds batches to these checks inline (its lines
    # marked "domain"). A change to them changes this digest: make the reader
    # follow (the random batches below then say whether it does), then the digest.
    checks: list[Callable[..., None]] = [domain.check_clean_batch, domain.check_capture_event]
    checks += [domain._at_least, *domain._PAYLOAD_CHECKS.values()]
    source = "".join(inspect.getsource(check) for check in checks)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == DOMAIN_DIGEST


@EQUIVALENCE
@given(clean_batches())
def test_a_clean_batch_reads_as_the_codec_reads_it(batch: dict[str, Any]) -> None:
    data = _encoded(batch)
    _same_as_the_codec(data)
    assert read_clean_batch(data) is not None  # read the common way, not the codec's


# One value out of its domain, each way `schemas.domain.check_clean_batch` refuses.
PAYLOAD_WAYS = {
    "count": "KeyInput",
    "modifiers": "KeyInput",
    "dt_ms": "MouseMove",
    "width": "ScreenFrame",
    "height": "ScreenFrame",
    "chars_inserted": "IdeEdit",
    "chars_deleted": "IdeEdit",
}
WAYS = sorted(
    {*PAYLOAD_WAYS, "seq", "ts", "received_ts", "consent_version", "org_id", "subject_id"}
    | {"device_id", "first_seq", "last_seq", "key_id", "events"}
)


def _out_of_domain(batch: dict[str, Any], ev: dict[str, Any], way: str, negative: int) -> None:
    """Take ``batch`` (holding ``ev``) out of its domain ``way``, by ``negative``."""
    if way in PAYLOAD_WAYS:
        payload = ev["payload"] = dict(PAYLOADS[PAYLOAD_WAYS[way]])
        if way == "count":
            payload["count"] = negative + 1
        elif way == "modifiers":
            payload["modifiers"] = [*MODIFIERS[:2], MODIFIERS[negative % 2]]
        elif way == "dt_ms":
            payload["path"] = [*payload["path"], {"dt_ms": negative, "x": 0, "y": 0}]
        else:
            payload[way] = negative
    elif way in ("seq", "ts", "received_ts", "consent_version"):
        ev[way] = negative
    elif way in ("org_id", "subject_id", "device_id"):
        ev[way] += "x"
    elif way == "first_seq":
        batch["first_seq"] = negative
    elif way == "last_seq":
        batch["last_seq"] = batch["first_seq"] - 1
    elif way == "key_id":
        batch["key_id"] = None if batch["key_id"] is not None else "k"
    else:
        batch["events"] = []


@EQUIVALENCE
@given(clean_batches(), st.data())
def test_a_value_out_of_its_domain_is_left_to_the_codec(
    batch: dict[str, Any], data: st.DataObject
) -> None:
    negative = data.draw(st.integers(-(2**31), -1))
    way = data.draw(st.sampled_from(WAYS))
    _out_of_domain(batch, data.draw(st.sampled_from(batch["events"])), way, negative)
    _refused_by_both(batch)


@pytest.mark.parametrize("way", WAYS)
def test_a_value_just_out_of_its_domain_is_left_to_the_codec(way: str) -> None:
    batch = _sample_batch()
    _out_of_domain(batch, batch["events"][-1], way, -1)
    _refused_by_both(batch)


def _refused_by_both(batch: dict[str, Any]) -> None:
    encoded = _encoded(batch)
    assert read_clean_batch(encoded) is None
    try:
        codec.decode(encoded)
    except SchemaError:
        return
    raise AssertionError("the codec read a batch out of its domain")


@EQUIVALENCE
@given(clean_batches(), st.data())
def test_a_truncated_or_changed_batch_reads_as_the_codec_reads_it(
    batch: dict[str, Any], data: st.DataObject
) -> None:
    encoded = _encoded(batch)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    _same_as_the_codec(encoded[:cut])
    at = data.draw(st.integers(10, len(encoded) - 1))
    changed = bytearray(encoded)
    changed[at] = data.draw(st.integers(0, 255))
    _same_as_the_codec(bytes(changed))
    _same_as_the_codec(encoded + data.draw(st.binary(min_size=1, max_size=3)))


def _sample_batch() -> dict[str, Any]:
    """A batch of one event of each payload type, sealed content, in its domain."""
    evs = [event(p) for p in sorted(PAYLOADS)]
    return {
        "batch_id": "b1",
        "org_id": evs[0]["org_id"],
        "subject_id": evs[0]["subject_id"],
        "device_id": evs[0]["device_id"],
        "first_seq": 0,
        "last_seq": 0,
        "key_id": "k1",
        "content": b"sealed",
        "events": evs,
    }


def test_every_byte_of_a_sample_changed_to_every_value() -> None:
    encoded = _encoded(_sample_batch())
    assert read_clean_batch(encoded) is not None
    for at in range(10, len(encoded), 3):
        for value in (0, 1, 2, 3, 0x7F, 0x80, 0x81, 0xFE, 0xFF, encoded[at] ^ 0x40):
            changed = bytearray(encoded)
            changed[at] = value
            _same_as_the_codec(bytes(changed))


def test_a_ten_byte_varint_is_left_to_the_codec() -> None:
    for ts in (2**62, 2**63 - 1):
        batch = {
            "batch_id": "b",
            "org_id": "org-1",
            "subject_id": "subj-123",
            "device_id": "dev-9",
            "first_seq": 0,
            "last_seq": 42,
            "key_id": None,
            "content": None,
            "events": [event(ts=ts)],
        }
        data = _encoded(batch)
        assert read_clean_batch(data) is None
        assert codec.decode(data)[1]["events"][0]["ts"] == ts


def test_other_records_and_types_are_left_to_the_codec() -> None:
    evs = [event("KeyInput")]
    assert read_clean_batch(codec.encode_event(evs[0])) is None
    assert read_clean_batch(b"") is None
    assert read_clean_batch(WRITTEN_FOR) is None
    batch = {
        "batch_id": "b1",
        "org_id": evs[0]["org_id"],
        "subject_id": evs[0]["subject_id"],
        "device_id": evs[0]["device_id"],
        "first_seq": 0,
        "last_seq": 0,
        "key_id": None,
        "content": None,
        "events": evs,
    }
    encoded = _encoded(batch)
    assert read_clean_batch(encoded) == codec.decode(encoded)[1]
    assert read_clean_batch(bytearray(encoded)) is None  # type: ignore[arg-type]


@EQUIVALENCE
@given(st.integers(1, 9).flatmap(lambda k: st.integers(-(2 ** (7 * k - 1)), 2 ** (7 * k - 1) - 1)))
def test_a_long_of_any_length_reads_as_written(value: int) -> None:
    # every varint length up to 9 bytes (62 bits and sign), followed by more
    # bytes or not; cut short, it never ends inside the bytes it was given
    out = bytearray()
    encode_long(out, value)
    for tail in (b"", b"\x00\x05", b"\xff" * 9):
        assert _long(bytes(out) + tail, 0) == (value, len(out))
    for cut in range(1, len(out)):
        try:
            _, end = _long(bytes(out[:cut]), 0)
        except (IndexError, _Unread):
            continue
        assert end > cut
