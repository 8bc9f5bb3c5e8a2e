"""What Candor holds about one subject, read from ClickHouse for the portal.

Every query here binds ``{s:String}`` to the signed-in subject and filters on
it: there is no function that reads another subject's rows, and ids taken
from a URL (a session, an event, an export) are looked up *together with* the
subject, so another person's id simply finds nothing. Counts are exact
(``uniqExact`` over the dedup key, ``FINAL`` where rows replace each other).
All functions block on ClickHouse and raise the driver's errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

__all__ = [
    "ConsentChange",
    "DaySummary",
    "ExportHeld",
    "Overview",
    "consent_history",
    "event_detail",
    "export_detail",
    "exports_held",
    "overview",
    "receipts",
    "recent_events",
    "redaction_counts",
    "session_detail",
    "table_rows",
]

RECENT_EVENTS = 50
# The tables the download holds, with their time column (for ordering).
PERSONAL_TABLES: dict[str, str] = {
    "events": "ts",
    "sessions": "start_ts",
    "activity_minutes": "window_start",
    "actions": "start_ts",
    "consent_ledger": "version",
}


@dataclass(frozen=True)
class ConsentChange:
    """One version of the person's consent, as the ledger recorded it."""

    version: int
    scopes: list[str]
    changed_by: str
    changed_at: datetime
    reason: str | None


@dataclass
class DaySummary:
    """One day of activity: events by type, active seconds per app, sessions."""

    day: date
    events_by_type: dict[str, int] = field(default_factory=dict)
    app_seconds: dict[str, float] = field(default_factory=dict)
    sessions: int = 0
    session_seconds: float = 0.0

    @property
    def events(self) -> int:
        """All events of the day."""
        return sum(self.events_by_type.values())

    @property
    def active_seconds(self) -> float:
        """Active seconds of the day, over all apps."""
        return sum(self.app_seconds.values())


@dataclass(frozen=True)
class ExportHeld:
    """A training export whose subject list held the person."""

    export_id: str
    created_at: datetime
    range_start: datetime
    range_end: datetime
    fmt: str
    total_rows: int


@dataclass(frozen=True)
class Overview:
    """The numbers of the portal's main page."""

    days: list[DaySummary]
    redactions: dict[str, int]
    exports: list[ExportHeld]

    @property
    def total_events(self) -> int:
        """Events over all days."""
        return sum(d.events for d in self.days)

    @property
    def total_sessions(self) -> int:
        """Sessions over all days."""
        return sum(d.sessions for d in self.days)

    @property
    def app_seconds(self) -> dict[str, float]:
        """Active seconds per app over all days, largest first."""
        out: dict[str, float] = {}
        for d in self.days:
            for app, sec in d.app_seconds.items():
                out[app] = out.get(app, 0.0) + sec
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _params(subject: str, **more: Any) -> dict[str, Any]:
    return {"s": subject, **more}


def consent_history(client: Client, subject: str) -> list[ConsentChange]:
    """Every consent version of ``subject``, oldest first."""
    rows = client.query(
        "SELECT version, any(scopes), any(changed_by), any(changed_at), any(reason) "
        "FROM consent_ledger WHERE subject_id = {s:String} GROUP BY version ORDER BY version",
        parameters=_params(subject),
    ).result_rows
    return [
        ConsentChange(int(v), [str(x) for x in sc], str(by), at, None if r is None else str(r))
        for v, sc, by, at, r in rows
    ]


def _days(client: Client, subject: str) -> list[DaySummary]:
    days: dict[date, DaySummary] = {}

    def day(d: date) -> DaySummary:
        return days.setdefault(d, DaySummary(d))

    for d, kind, n in client.query(
        "SELECT toDate(ts) AS d, event_type, uniqExact(event_id) FROM events "
        "WHERE subject_id = {s:String} GROUP BY d, event_type",
        parameters=_params(subject),
    ).result_rows:
        day(d).events_by_type[str(kind)] = int(n)
    for d, app, sec in client.query(
        "SELECT toDate(window_start) AS d, app, sum(seconds) FROM activity_minutes "
        "ARRAY JOIN mapKeys(app_seconds) AS app, mapValues(app_seconds) AS seconds "
        "WHERE subject_id = {s:String} GROUP BY d, app",
        parameters=_params(subject),
    ).result_rows:
        day(d).app_seconds[str(app)] = float(sec)
    for d, n, sec in client.query(
        "SELECT toDate(start_ts) AS d, count(), sum(active_seconds) FROM sessions FINAL "
        "WHERE subject_id = {s:String} GROUP BY d",
        parameters=_params(subject),
    ).result_rows:
        day(d).sessions, day(d).session_seconds = int(n), float(sec)
    for summary in days.values():
        summary.events_by_type = dict(sorted(summary.events_by_type.items()))
        summary.app_seconds = dict(
            sorted(summary.app_seconds.items(), key=lambda kv: (-kv[1], kv[0]))
        )
    return [days[d] for d in sorted(days)]


def redaction_counts(client: Client, subject: str) -> dict[str, int]:
    """How many of the subject's events each redaction rule touched, by rule."""
    rows = client.query(
        "SELECT rule, uniqExact(event_id) FROM events ARRAY JOIN redactions AS rule "
        "WHERE subject_id = {s:String} GROUP BY rule ORDER BY rule",
        parameters=_params(subject),
    ).result_rows
    return {str(r): int(n) for r, n in rows}


def exports_held(client: Client, subject: str) -> list[ExportHeld]:
    """The exports whose subject list holds ``subject``, oldest first."""
    rows = client.query(
        "SELECT export_id, created_at, range_start, range_end, format, total_rows FROM exports "
        "WHERE has(subjects, {s:String}) ORDER BY created_at",
        parameters=_params(subject),
    ).result_rows
    return [ExportHeld(str(e), c, a, b, str(f), int(n)) for e, c, a, b, f, n in rows]


def overview(client: Client, subject: str) -> Overview:
    """Days, redactions and exports of ``subject``."""
    return Overview(
        _days(client, subject), redaction_counts(client, subject), exports_held(client, subject)
    )


EVENT_FIELDS = (
    "event_id",
    "ts",
    "event_type",
    "app_name",
    "window_title",
    "url_host",
    "key_name",
    "text",
    "command",
    "diff",
    "frame_ref",
    "redactions",
    "consent_version",
)


def recent_events(client: Client, subject: str, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    """The subject's latest ``limit`` events (content as stored: in clear where
    consented, empty where not), newest first."""
    rows = client.query(
        f"SELECT {', '.join(EVENT_FIELDS)} FROM events FINAL WHERE subject_id = {{s:String}} "
        "ORDER BY ts DESC, event_id LIMIT {n:UInt32}",
        parameters=_params(subject, n=limit),
    ).result_rows
    return [dict(zip(EVENT_FIELDS, r, strict=True)) for r in rows]


def event_detail(client: Client, subject: str, event_id: str) -> dict[str, Any] | None:
    """One event of ``subject`` with its payload, or None (absent, or another person's)."""
    rows = client.query(
        f"SELECT {', '.join(EVENT_FIELDS)}, payload_json FROM events FINAL "
        "WHERE subject_id = {s:String} AND event_id = {e:String} LIMIT 1",
        parameters=_params(subject, e=event_id),
    ).result_rows
    if not rows:
        return None
    out = dict(zip((*EVENT_FIELDS, "payload_json"), rows[0], strict=True))
    return out


def session_detail(client: Client, subject: str, session_id: str) -> dict[str, Any] | None:
    """One session of ``subject``, or None (absent, or another person's)."""
    result = client.query(
        "SELECT session_id, device_id, start_ts, end_ts, end_reason, active_seconds, "
        "event_counts, app_seconds, keystrokes, clicks, scrolls, commands_run FROM sessions "
        "FINAL WHERE subject_id = {s:String} AND session_id = {i:String} LIMIT 1",
        parameters=_params(subject, i=session_id),
    )
    if not result.result_rows:
        return None
    return dict(zip(result.column_names, result.result_rows[0], strict=True))


def sessions(client: Client, subject: str, limit: int = 50) -> list[dict[str, Any]]:
    """The subject's latest sessions, newest first."""
    result = client.query(
        "SELECT session_id, start_ts, end_ts, active_seconds, end_reason FROM sessions FINAL "
        "WHERE subject_id = {s:String} ORDER BY start_ts DESC LIMIT {n:UInt32}",
        parameters=_params(subject, n=limit),
    )
    return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]


def export_detail(client: Client, subject: str, export_id: str) -> ExportHeld | None:
    """One export that held ``subject``, or None (absent, or it did not hold them)."""
    for found in exports_held(client, subject):
        if found.export_id == export_id:
            return found
    return None


def receipts(client: Client, subject: str) -> list[dict[str, Any]]:
    """The subject's erasure receipts (normally none or one), as JSON dicts."""
    rows = client.query(
        "SELECT detail FROM audit_log WHERE action = 'erase' AND subject = {s:String} ORDER BY at",
        parameters=_params(subject),
    ).result_rows
    out: list[dict[str, Any]] = []
    for (detail,) in rows:
        try:
            out.append(json.loads(str(detail)))
        except ValueError:
            out.append({"detail": str(detail)})
    return out


def table_rows(client: Client, subject: str, table: str) -> Any:
    """All of the subject's rows of one of `PERSONAL_TABLES` as a pyarrow Table
    (``FINAL`` where rows replace each other). Raises KeyError for another table."""
    order = PERSONAL_TABLES[table]
    final = "" if table in ("activity_minutes", "consent_ledger") else "FINAL"
    return client.query_arrow(
        f"SELECT * FROM {table} {final} WHERE subject_id = {{s:String}} ORDER BY {order}",
        parameters=_params(subject),
    )
