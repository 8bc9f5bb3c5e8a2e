"""Which topic lands in which table, and how one message becomes one row. Pure.

A `Route` names the table, the record the topic carries (decoded with
`schemas.codec`), the row function of `sinks.rows` and the topic read by
default. The DLQ route reads raw messages: dead letters are not Avro.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privacy.content_keys import Decrypt
from schemas import codec
from schemas.errors import SchemaError
from schemas.topics import Topic
from sinks import rows
from sinks.columns import Columns
from sinks.rows import Headers, Row


@dataclass(frozen=True)
class Route:
    """One topic -> table mapping."""

    table: str
    topic: str
    record: str | None  # None: raw messages (the DLQ)
    columns: tuple[str, ...]
    to_row: Callable[[Mapping[str, Any]], Row] | None
    measures_lag: bool = False  # observe now - ts per row (capture events)
    into: str | None = None  # the table rows are inserted into, when not `table`
    # (`table` stays the route's name: consumer group, metrics)
    batch_record: str | None = None  # a record holding many `record`s under "events"
    # the rows of a batch record's events at once (`sinks.rows.event_rows`)
    to_rows: Callable[[Sequence[Mapping[str, Any]]], list[Row]] | None = None

    @property
    def target(self) -> str:
        """The table this route's rows are inserted into."""
        return self.into or self.table


ROUTES: dict[str, Route] = {
    r.table: r
    for r in (
        # capture.clean holds CleanBatch records (and, from before them, CaptureEvents)
        Route(
            "events",
            Topic.CAPTURE_CLEAN,
            "CaptureEvent",
            rows.EVENT_COLUMNS,
            rows.event_row,
            measures_lag=True,
            batch_record="CleanBatch",
            to_rows=rows.event_rows,
        ),
        Route(
            "sessions", Topic.ACTIVITY_SESSIONS, "Session", rows.SESSION_COLUMNS, rows.session_row
        ),
        # activity_minutes is a view summing the per-device rows (migration 0005)
        Route(
            "activity_minutes",
            Topic.ACTIVITY_MINUTES,
            "MinuteAggregate",
            rows.MINUTE_COLUMNS,
            rows.minute_row,
            into="activity_minutes_by_device",
        ),
        Route("actions", Topic.TRAINING_ACTIONS, "Action", rows.ACTION_COLUMNS, rows.action_row),
        Route(
            "consent_ledger",
            Topic.CONSENT_POLICIES,
            "ConsentPolicy",
            rows.CONSENT_COLUMNS,
            rows.consent_row,
        ),
        Route("dead_letters", Topic.CAPTURE_DLQ, None, rows.DEAD_LETTER_COLUMNS, None),
    )
}


class Unmappable(Exception):
    """A message that cannot become a row; ``reason`` is the dead-letter reason label."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


def route_for(table: str) -> Route:
    """Return the route of ``table``; raises `KeyError` naming the known tables."""
    try:
        return ROUTES[table]
    except KeyError:
        raise KeyError(f"no sink for table {table!r}; known: {sorted(ROUTES)}") from None


def route_by_topic(topic: str) -> Route:
    """Return the route whose default topic is ``topic``; raises `KeyError`."""
    for route in ROUTES.values():
        if route.topic == topic:
            return route
    raise KeyError(f"{topic!r} is not a default sink topic; name the table with --table")


def map_message(
    route: Route,
    value: bytes | None,
    headers: Headers,
    topic: str,
    partition: int,
    offset: int,
    decrypt: Decrypt,
) -> list[tuple[Row, int | None]]:
    """Return ``[(row, event ts or None), ...]`` for one message of ``route``'s
    topic: one row for a record, one per event for a batch record (a
    `CleanBatch`, decrypted once as a whole by the hook), none when the decrypt
    hook says to skip it (an erased subject). ``decrypt`` is called with the
    record name the route expects (its ``batch_record`` for a batch): the record
    type comes from the route, never from the datum.

    Raises `Unmappable` with the schema error's reason (``undecodable``,
    ``unknown_schema``, ``invalid_field``) or ``unmappable`` (a decoded datum
    the row function or the decrypt hook refused); a batch record is refused
    whole.
    """
    columns = Columns(len(route.columns))
    added = map_into(route, columns, [], value, headers, topic, partition, offset, decrypt)
    ts_at = route.columns.index("ts") if route.measures_lag else None
    out: list[tuple[Row, int | None]] = []
    for index in range(added):
        row = columns.row(index)
        ts = None if ts_at is None else row[ts_at]
        out.append((row, ts if isinstance(ts, int) else None))
    return out


def map_into(
    route: Route,
    columns: Columns,
    stamps: list[int],
    value: bytes | None,
    headers: Headers,
    topic: str,
    partition: int,
    offset: int,
    decrypt: Decrypt,
) -> int:
    """`map_message`, appending to ``columns`` (the route's) instead of returning
    rows: a batch record's events are built at once (``route.to_rows``), any
    other record as its one row. Appends each
    row's event ts to ``stamps`` when the route measures lag. Returns how many
    rows were added (0 for a skipped record). Raises `Unmappable` exactly as
    `map_message` does, having added nothing.
    """
    if route.record is None or route.to_row is None:
        columns.add_row(rows.dead_letter_row(value, headers, topic, partition, offset))
        return 1
    try:
        name, datum = decode_record(value or b"")
    except SchemaError as err:
        raise Unmappable(err.reason, str(err)) from err
    batch = name == route.batch_record
    if name != route.record and not batch:
        raise Unmappable("unknown_schema", f"expected {route.record}, got {name}")
    try:
        plain = decrypt(name if batch else route.record, datum)
        if plain is None:
            return 0
        items = plain["events"] if batch else [plain]
        if not items:
            return 0
        if batch and route.to_rows is not None:
            columns.add_rows(route.to_rows(items))
        else:
            built = [route.to_row(item) for item in items]  # all built before any is added
            for row in built:
                columns.add_row(row)
    except Exception as err:  # a decrypt hook or mapping failure is bad input, not a crash
        raise Unmappable("unmappable", f"{type(err).__name__}: {err}") from err
    if route.measures_lag:
        stamps.extend(ts for item in items if isinstance(ts := item.get("ts"), int))
    return len(items)


def decode_record(value: bytes) -> tuple[str, dict[str, Any]]:
    """``(short record name, datum)`` of a message (`schemas.codec.decode`, whose
    reader of current versions is compiled: `schemas.reader`). Raises
    `SchemaError` as the codec does."""
    return codec.decode(value)
