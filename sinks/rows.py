"""Row mapping: one decoded Candor record -> one ClickHouse row tuple. Pure.

Each ``*_COLUMNS`` tuple names the insert columns of a table (migration 0001)
in the order of the tuples its ``*_row`` function returns. Timestamps stay
integer microseconds (clickhouse-connect writes ints into DateTime64(6) as
ticks). Functions raise `KeyError`/`TypeError` only for a datum that breaks
the shared contract; the decoder has validated everything they read.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import dead_letter
from schemas.errors import UnknownPayloadType

Row = tuple[Any, ...]
Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "org_id",
    "subject_id",
    "device_id",
    "seq",
    "ts",
    "received_ts",
    "event_type",
    "app_name",
    "window_title",
    "url_host",
    "key_name",
    "text",
    "modifiers",
    "keys_count",
    "button",
    "x",
    "y",
    "dx",
    "dy",
    "mouse_points",
    "mouse_distance_px",
    "previous_app_name",
    "frame_ref",
    "language",
    "chars_inserted",
    "chars_deleted",
    "diff",
    "command",
    "exit_code",
    "activity_state",
    "payload_json",
    "redactions",
    "consent_version",
    "client_version",
)

# Payload fields that get their own column; everything else of the payload
# (minus "type") goes to payload_json.
_FLATTENED: dict[str, dict[str, str]] = {
    "KeyInput": {
        "key": "key_name",
        "text": "text",
        "modifiers": "modifiers",
        "count": "keys_count",
    },
    "MouseMove": {},
    "MouseClick": {"button": "button", "x": "x", "y": "y"},
    "Scroll": {"dx": "dx", "dy": "dy"},
    "WindowFocus": {"previous_app_name": "previous_app_name"},
    "ScreenFrame": {"ref": "frame_ref"},
    "IdeEdit": {
        "language": "language",
        "chars_inserted": "chars_inserted",
        "chars_deleted": "chars_deleted",
        "diff": "diff",
    },
    "TerminalCommand": {"command": "command", "exit_code": "exit_code"},
    "ActivityState": {"state": "activity_state"},
}

_PAYLOAD_COLUMNS = EVENT_COLUMNS[
    EVENT_COLUMNS.index("key_name") : EVENT_COLUMNS.index("payload_json")
]
_PAYLOAD_DEFAULTS: dict[str, Any] = {name: None for name in _PAYLOAD_COLUMNS}
_PAYLOAD_DEFAULTS.update(modifiers=[], keys_count=0, mouse_points=0, mouse_distance_px=0.0)
_DEFAULT_VALUES: tuple[Any, ...] = tuple(_PAYLOAD_DEFAULTS[c] for c in _PAYLOAD_COLUMNS)
# per payload type: (field, position in the payload columns), computed once
_POSITIONS: dict[str, tuple[tuple[str, int], ...]] = {
    kind: tuple((f, _PAYLOAD_COLUMNS.index(c)) for f, c in fields.items())
    for kind, fields in _FLATTENED.items()
}
_MOUSE = (_PAYLOAD_COLUMNS.index("mouse_points"), _PAYLOAD_COLUMNS.index("mouse_distance_px"))
_MODIFIERS = _PAYLOAD_COLUMNS.index("modifiers")


_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def event_row(event: Mapping[str, Any]) -> Row:
    """Return the `events` row of a capture event (columns `EVENT_COLUMNS`).

    Flattened payload fields get typed columns (NULL when the payload type has
    no such field, 0/[] for the counters); the other payload fields are kept in
    ``payload_json`` (sorted keys). A MouseMove's ``mouse_points`` and
    ``mouse_distance_px`` are computed from its path. Raises `UnknownPayloadType`.
    """
    kind, cols, rest = _payload_values(event["payload"])
    app = event["app"]
    return (
        event["event_id"],
        event["org_id"],
        event["subject_id"],
        event["device_id"],
        event["seq"],
        event["ts"],
        event.get("received_ts"),
        kind,
        app["app_name"],
        app.get("window_title"),
        app.get("url_host"),
        *cols,
        rest,
        list(event.get("redactions") or []),
        event.get("consent_version"),
        event.get("client_version"),
    )


def event_rows(events: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Return the `events` rows of ``events``, each equal to its `event_row`
    (what a `CleanBatch`'s events land as). Raises `UnknownPayloadType`.

    The same rows as `event_row`, built for a batch at a fraction of its CPU:
    the sink runs on the cores the stream worker needs. `event_row` stays the
    plain definition (and the bare path's yardstick in ``bench/e2e.py``); this
    one differs only in how it gets there, pinned equal by the unit tests:

    - what to read from a payload is worked out once per payload type and key
      layout (`_PayloadPlan`): a decoded payload of one type always has the
      same keys, so no per-event look-up of which fields are flattened, and
      its payload columns are two ``itemgetter`` calls, no loop;
    - ``payload_json`` of a payload whose other fields are all booleans or
      None (a KeyInput's ``is_secure_field``, a click's ``double``: most
      events) is looked up, not encoded again (`_small_json`);
    - the fields every event has are read by one ``itemgetter`` call;
    - an empty ``modifiers`` or ``redactions`` is one shared list (`_EMPTY`).
    """
    out: list[Row] = []
    append = out.append
    for event in events:
        payload = event["payload"]
        kind = payload["type"]
        plan = _PLANS.get((kind, tuple(payload))) or _plan_of(kind, payload)
        if kind == "KeyInput":
            modifiers = payload.get("modifiers")
            computed: tuple[Any, ...] = (list(modifiers) if modifiers else _EMPTY,)
        elif kind == "MouseMove":
            computed = (len(payload["path"]), path_length(payload["path"]))
        else:
            computed = ()
        cols = plan.pick(plan.defaults + plan.read(payload) + computed)
        redactions = event.get("redactions")
        if plan.rest:
            rest = _small_json(plan.rest, tuple(map(payload.__getitem__, plan.rest)))
        else:
            rest = "{}"
        app = event["app"]
        append(
            (
                *_REQUIRED(event),
                event.get("received_ts"),
                kind,
                app["app_name"],
                app.get("window_title"),
                app.get("url_host"),
                *cols,
                rest,
                list(redactions) if redactions else _EMPTY,
                event.get("consent_version"),
                event.get("client_version"),
            )
        )
    return out


# The empty list of the rows without modifiers or redactions, one for all of
# them as the payload columns' default [] already is (rows are only read): a
# list per row would be one more object per event for the garbage collector
# to walk while the batch waits for its insert.
_EMPTY: list[Any] = _PAYLOAD_DEFAULTS["modifiers"]


_REQUIRED = operator.itemgetter("event_id", "org_id", "subject_id", "device_id", "seq", "ts")


@dataclass(frozen=True, slots=True)
class _PayloadPlan:
    """What `event_rows` reads from a payload of one type and key layout.

    The payload columns are ``pick(defaults + read(payload) + computed)``:
    ``defaults`` are the payload columns' defaults (`event_row`'s: the type's
    flattened fields missing from the layout are None, not the counters' 0 or
    []), ``read`` returns the flattened fields present in the layout,
    ``computed`` are the columns `event_rows` works out (a KeyInput's
    modifiers, a MouseMove's points and distance) and ``pick`` takes each
    column from that tuple. ``rest`` are the fields of ``payload_json``.
    """

    read: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    rest: tuple[str, ...]
    defaults: tuple[Any, ...]


#: The payload columns `event_rows` computes, per payload type, in order.
_COMPUTED: dict[str, tuple[int, ...]] = {"KeyInput": (_MODIFIERS,), "MouseMove": _MOUSE}


# (payload type, its keys in order) -> plan; payloads decoded by the codec have
# one layout per type. Bounded: past the limit a layout is planned each time.
_PLANS: dict[tuple[str, tuple[str, ...]], _PayloadPlan] = {}
_MAX_PLANS = 256


def _no_fields(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    return ()


def _plan_of(kind: str, payload: Mapping[str, Any]) -> _PayloadPlan:
    """The plan of ``payload`` (kept for its layout); raises `UnknownPayloadType`."""
    positions = _POSITIONS.get(kind)
    if positions is None:
        raise UnknownPayloadType(f"unknown payload type {kind!r}")
    flattened = _FLATTENED[kind]
    present = [(field, at) for field, at in positions if field in payload]
    absent = {at for field, at in positions if field not in payload}
    defaults = tuple(None if at in absent else v for at, v in enumerate(_DEFAULT_VALUES))
    # where each payload column is taken from in defaults + read(payload) + computed
    source = list(range(len(defaults)))
    for index, (_, at) in enumerate(present):
        source[at] = len(defaults) + index
    for index, at in enumerate(_COMPUTED.get(kind, ())):
        source[at] = len(defaults) + len(present) + index
    fields = [field for field, _ in present]
    read: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    if len(fields) > 1:
        read = operator.itemgetter(*fields)
    elif fields:  # an itemgetter of one returns the value, not a tuple: twice
        read = operator.itemgetter(fields[0], fields[0])
        source = [at if at <= len(defaults) else at + 1 for at in source]
    else:
        read = _no_fields
    plan = _PayloadPlan(
        read=read,
        pick=operator.itemgetter(*source),
        rest=tuple(k for k in payload if k != "type" and k not in flattened),
        defaults=defaults,
    )
    if len(_PLANS) < _MAX_PLANS:
        _PLANS[(kind, tuple(payload))] = plan
    return plan


# ``payload_json`` by (field names, values) for values that are all booleans or
# None: at most 3**n texts per layout. (Only these: 1 == True == 1.0 as keys,
# and other values are too many to keep.) Bounded like `_PLANS`.
_SMALL_JSON: dict[tuple[tuple[str, ...], tuple[Any, ...]], str] = {}
_MAX_SMALL_JSON = 1024
_BOOL_OR_NONE = frozenset((bool, type(None)))
# Values orjson writes exactly as `_JSON` does: strings (a string with a lone
# surrogate, which orjson refuses, goes to `_JSON`), integers (one beyond 64
# bits too), booleans and None. Not floats: orjson spells some of them
# differently (1e16 is 1e+16 to json).
_ORJSON_SCALARS = frozenset((str, int, bool, type(None)))
_INT = frozenset((int,))
_DICT = frozenset((dict,))


def _small_json(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """``payload_json`` of the fields ``names`` holding ``values`` (as `_payload_values`)."""
    types = set(map(type, values))
    if types <= _BOOL_OR_NONE:
        text = _SMALL_JSON.get((names, values))
        if text is None:
            text = _JSON(dict(zip(names, values, strict=True)))
            if len(_SMALL_JSON) < _MAX_SMALL_JSON:
                _SMALL_JSON[(names, values)] = text
        return text
    if types <= _ORJSON_SCALARS or (types == {list} and all(map(_int_points, values))):
        # orjson writes the same text as `_JSON` for these values at a tenth of its
        # CPU (a screen frame's id and size, a mouse path: a fifth of the events);
        # pinned equal by tests/unit/sinks/test_sinks_event_rows.py.
        try:
            return orjson.dumps(dict(zip(names, values, strict=True)), option=_SORTED).decode()
        except orjson.JSONEncodeError:  # a lone surrogate, an integer beyond 64 bits
            pass
    return _JSON(dict(zip(names, values, strict=True)))


_SORTED = orjson.OPT_SORT_KEYS


def _int_points(value: list[Any]) -> bool:
    """Whether ``value`` is a list of dicts of integers (a MouseMove's path):
    C iterators over its points' values, a mouse path being ~15 points."""
    if not _DICT.issuperset(map(type, value)):
        return False
    return _INT.issuperset(map(type, itertools.chain.from_iterable(map(dict.values, value))))


def _payload_values(payload: Mapping[str, Any]) -> tuple[str, list[Any], str]:
    """(payload type, its values of the payload columns, its ``payload_json``)."""
    kind = payload["type"]
    flattened = _FLATTENED.get(kind)
    if flattened is None:
        raise UnknownPayloadType(f"unknown payload type {kind!r}")
    cols = list(_DEFAULT_VALUES)
    for field, position in _POSITIONS[kind]:
        cols[position] = payload.get(field)
    if kind == "KeyInput":
        cols[_MODIFIERS] = list(payload.get("modifiers") or [])
    elif kind == "MouseMove":
        cols[_MOUSE[0]] = len(payload["path"])
        cols[_MOUSE[1]] = path_length(payload["path"])
    rest = {k: v for k, v in payload.items() if k != "type" and k not in flattened}
    return kind, cols, _JSON(rest) if rest else "{}"


def path_length(path: Sequence[Mapping[str, int]]) -> float:
    """Euclidean length in pixels of a mouse path (sum over consecutive points)."""
    return sum(math.hypot(b["x"] - a["x"], b["y"] - a["y"]) for a, b in itertools.pairwise(path))


SESSION_COLUMNS: tuple[str, ...] = (
    "session_id",
    "org_id",
    "subject_id",
    "device_id",
    "start_ts",
    "end_ts",
    "end_reason",
    "active_seconds",
    "event_counts",
    "app_seconds",
    "keystrokes",
    "clicks",
    "scrolls",
    "mouse_distance_px",
    "commands_run",
    "event_ids_count",
)


def session_row(session: Mapping[str, Any]) -> Row:
    """Return the `sessions` row of a Session record (columns `SESSION_COLUMNS`)."""
    return tuple(
        dict(session[c]) if c in ("event_counts", "app_seconds") else session[c]
        for c in SESSION_COLUMNS
    )


MINUTE_COLUMNS: tuple[str, ...] = (
    "org_id",
    "subject_id",
    "device_id",
    "window_start",
    "keys",
    "clicks",
    "scrolls",
    "mouse_distance_px",
    "active_seconds",
    "app_seconds",
    "events",
)


def minute_row(minute: Mapping[str, Any]) -> Row:
    """Return the `activity_minutes_by_device` row of a MinuteAggregate (columns
    `MINUTE_COLUMNS`)."""
    return tuple(dict(minute[c]) if c == "app_seconds" else minute[c] for c in MINUTE_COLUMNS)


ACTION_COLUMNS: tuple[str, ...] = (
    "action_id",
    "org_id",
    "subject_id",
    "device_id",
    "session_hint",
    "kind",
    "start_ts",
    "end_ts",
    "text",
    "chord",
    "button",
    "x",
    "y",
    "path",
    "dx",
    "dy",
    "command",
    "app_name",
    "window_title",
    "observation_ref",
    "event_count",
    "redactions",
)


def action_row(action: Mapping[str, Any]) -> Row:
    """Return the `actions` row of an Action record (columns `ACTION_COLUMNS`).

    ``path`` becomes a list of ``(dt_ms, x, y)`` tuples; absent optional fields
    take the contract defaults (``[]``, ``0``, ``None``).
    """
    defaults: dict[str, Any] = {"path": [], "dx": 0, "dy": 0, "redactions": []}
    out = []
    for column in ACTION_COLUMNS:
        value = action.get(column, defaults.get(column))
        if column == "path":
            value = [(p["dt_ms"], p["x"], p["y"]) for p in value]
        elif column == "redactions":
            value = list(value)
        out.append(value)
    return tuple(out)


CONSENT_COLUMNS: tuple[str, ...] = (
    "subject_id",
    "org_id",
    "version",
    "scopes",
    "changed_by",
    "changed_at",
    "reason",
)


def consent_row(policy: Mapping[str, Any]) -> Row:
    """Return the `consent_ledger` row of a ConsentPolicy (columns `CONSENT_COLUMNS`)."""
    return (
        policy["subject_id"],
        policy["org_id"],
        policy["version"],
        sorted(policy["scopes"]),
        policy["changed_by"],
        policy["changed_at"],
        policy.get("reason"),
    )


DEAD_LETTER_COLUMNS: tuple[str, ...] = (
    "reason",
    "error",
    "original_topic",
    "original_partition",
    "original_offset",
    "dlq_topic",
    "dlq_partition",
    "dlq_offset",
    "headers",
    "raw",
    "event_number",
)


def dead_letter_row(
    value: bytes | None, headers: Headers, topic: str, partition: int, offset: int
) -> Row:
    """Return the `dead_letters` row of one message of a DLQ topic (columns `DEAD_LETTER_COLUMNS`).

    ``topic/partition/offset`` are the DLQ message's own coordinates; the
    original ones and the reason come from the headers written by
    `schemas.dead_letter.DeadLetter.sink_headers` (missing: reason ``"unknown"``, -1).
    ``event_number`` is the refused event's position in its DeviceBatch from 1
    (header ``event_index`` + 1), 0 when the whole record was refused.
    Header values are decoded as UTF-8 with replacement; ``raw`` keeps the
    value's bytes unchanged.
    """
    found = decode_headers(headers)
    return (
        found.get(dead_letter.HEADER_REASON, "unknown"),
        found.get(dead_letter.HEADER_ERROR, ""),
        found.get(dead_letter.HEADER_TOPIC, ""),
        _int_or(found.get(dead_letter.HEADER_PARTITION), -1),
        _int_or(found.get(dead_letter.HEADER_OFFSET), -1),
        topic,
        partition,
        offset,
        found,
        value or b"",
        max(_int_or(found.get(dead_letter.HEADER_EVENT_INDEX), -1) + 1, 0),
    )


def decode_headers(headers: Headers) -> dict[str, str]:
    """Kafka headers as ``{name: text}``; a repeated name keeps its last value."""
    out: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, raw in pairs:
        if isinstance(raw, bytes):
            out[name] = raw.decode("utf-8", errors="replace")
        else:
            out[name] = "" if raw is None else raw
    return out


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
