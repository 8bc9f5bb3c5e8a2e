"""The portal's HTML, rendered on the server. Pure: data in, text out.

Every value is escaped with :func:`html.escape`; every state change is a
``<form method="post">`` carrying the session's CSRF token; every number a
test compares with ClickHouse carries a ``data-metric`` attribute.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from candor.portal.charts import bar_chart, hbar_chart
from candor.portal.data import ConsentChange, DaySummary, Overview
from privacy.scope import Scope

__all__ = [
    "consent_page",
    "download_page",
    "erase_page",
    "events_page",
    "home_page",
    "layout",
    "message_page",
    "receipt_page",
    "record_page",
]

SCOPE_TEXT: dict[str, str] = {
    "activity_metadata": "Activity metadata: which app is in front and when you are active "
    "(without it nothing is kept at all)",
    "window_titles": "Window titles: the titles of the windows you use",
    "keystroke_content": "Keystroke content: the text you type",
    "screen_frames": "Screen frames: pictures of your screen",
    "ide_content": "IDE content: the code changes you make",
    "terminal_content": "Terminal content: the commands you run",
    "training_use": "Training use: your actions may go into training datasets",
    "analytics": "Analytics: you are counted in team-level statistics",
}


def scope_text(scope: str) -> str:
    """What a scope lets Candor keep, in the person's words (the name if unknown)."""
    return SCOPE_TEXT.get(scope, scope.replace("_", " ").capitalize())


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return f'<time datetime="{value.isoformat()}">{value:%Y-%m-%d %H:%M:%S} UTC</time>'


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(token)}">'


def _table(
    caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]], table_id: str = ""
) -> str:
    """A table; ``rows`` hold already-escaped HTML cells."""
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    ident = f' id="{table_id}"' if table_id else ""
    return (
        f"<table{ident}><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def layout(title: str, body: str, subject: str | None = None) -> str:
    """The page around ``body`` (already HTML): skip link, header, navigation."""
    nav = ""
    if subject is not None:
        links = [
            ("/", "Overview"),
            ("/consent", "Consent"),
            ("/events", "Recent events"),
            ("/download", "Download my data"),
            ("/erase", "Erase my data"),
        ]
        items = "".join(f'<li><a href="{h}">{_e(t)}</a></li>' for h, t in links)
        nav = (
            f'<nav aria-label="Portal"><ul>{items}</ul></nav>'
            f'<form method="post" action="/signout" class="signout">'
            f'<button type="submit">Sign out</button></form>'
        )
    who = f'<p class="who">Signed in as <code>{_e(subject)}</code></p>' if subject else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Candor</title>"
        '<link rel="stylesheet" href="/static/portal.css">'
        '<script src="/static/portal.js" defer></script></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><p class="brand">Candor: your data</p>{who}{nav}</header>'
        f'<main id="main" tabindex="-1"><h1>{_e(title)}</h1>{body}</main></body></html>'
    )


def message_page(title: str, text: str) -> str:
    """A page that only says something (a refused link, a limit)."""
    return layout(title, f"<p>{_e(text)}</p>")


def _hours_text(hours: Mapping[str, Any] | None) -> str:
    if not hours:
        return "Your organisation has set no capture hours: capture may happen at any hour."
    days = ", ".join(str(d) for d in hours.get("weekdays", []))
    return (
        f"Capture happens only on {_e(days)}, from {_e(hours.get('start'))} to "
        f"{_e(hours.get('end'))} ({_e(hours.get('tz'))})."
    )


def _scopes_list(scopes: Sequence[str]) -> str:
    if not scopes:
        return "<p>You have granted no scope: nothing about you is kept.</p>"
    items = "".join(f'<li data-scope="{_e(s)}">{_e(scope_text(s))}</li>' for s in scopes)
    return f'<ul id="current-scopes">{items}</ul>'


def _day_rows(days: Sequence[DaySummary]) -> Iterable[list[str]]:
    for d in days:
        kinds = ", ".join(f"{_e(k)}: {n}" for k, n in d.events_by_type.items())
        apps = ", ".join(f"{_e(a)}: {s / 60:.1f} min" for a, s in list(d.app_seconds.items())[:5])
        yield [
            f"{d.day.isoformat()}",
            f'<span data-metric="day-events" data-day="{d.day}">{d.events}</span>',
            kinds,
            f'<span data-metric="day-sessions" data-day="{d.day}">{d.sessions}</span>',
            f'<span data-metric="day-active-seconds" data-day="{d.day}">'
            f"{d.active_seconds:.0f}</span>",
            apps,
        ]


def home_page(
    subject: str,
    scopes: Sequence[str],
    hours: Mapping[str, Any] | None,
    view: Overview,
    receipts: Sequence[Mapping[str, Any]],
    sessions: Sequence[Mapping[str, Any]],
) -> str:
    """The overview: consent now, capture hours, activity, redactions, exports, receipts."""
    per_day = [(d.day.strftime("%m-%d"), float(d.events)) for d in view.days[-14:]]
    per_app = [(a, s / 60) for a, s in list(view.app_seconds.items())[:10]]
    redactions = [
        [_e(rule), f'<span data-metric="redaction" data-rule="{_e(rule)}">{n}</span>']
        for rule, n in view.redactions.items()
    ]
    exports = [
        [
            f'<a href="/exports/{_e(x.export_id)}">{_e(x.export_id)}</a>',
            _when(x.created_at),
            f"{_when(x.range_start)} to {_when(x.range_end)}",
            _e(x.fmt),
        ]
        for x in view.exports
    ]
    sess = [
        [
            f'<a href="/sessions/{_e(s["session_id"])}">{_when(s["start_ts"])}</a>',
            _when(s["end_ts"]),
            f"{float(s['active_seconds']) / 60:.1f} min",
            _e(s["end_reason"]),
        ]
        for s in sessions
    ]
    body = (
        '<section aria-labelledby="h-consent"><h2 id="h-consent">Your consent now</h2>'
        f'{_scopes_list(scopes)}<p><a href="/consent">Change your consent</a></p></section>'
        '<section aria-labelledby="h-hours"><h2 id="h-hours">Capture hours</h2>'
        f'<p id="capture-hours">{_hours_text(hours)}</p></section>'
        '<section aria-labelledby="h-totals"><h2 id="h-totals">What was captured</h2>'
        '<dl class="totals">'
        f'<dt>Events</dt><dd data-metric="total-events">{view.total_events}</dd>'
        f'<dt>Work sessions</dt><dd data-metric="total-sessions">{view.total_sessions}</dd>'
        f'<dt>Active time</dt><dd><span data-metric="total-active-seconds">'
        f"{sum(view.app_seconds.values()):.0f}</span> s</dd></dl>"
        f"<figure>{bar_chart('Events per day', per_day)}"
        "<figcaption>Events captured per day (last 14 days)</figcaption></figure>"
        f"<figure>{hbar_chart('Active time per app, minutes', per_app, ' min')}"
        "<figcaption>Active time per application, minutes</figcaption></figure>"
        + _table(
            "Per day",
            ["Day", "Events", "Events by type", "Sessions", "Active seconds", "Top apps"],
            _day_rows(view.days),
            "days",
        )
        + "</section>"
        '<section aria-labelledby="h-sessions"><h2 id="h-sessions">Recent work sessions</h2>'
        + _table("Latest sessions", ["Start", "End", "Active", "Ended by"], sess, "sessions")
        + '</section><section aria-labelledby="h-red"><h2 id="h-red">What was redacted</h2>'
        "<p>How many of your events each redaction rule changed before they were kept.</p>"
        + _table("Redactions by rule", ["Rule", "Events"], redactions, "redactions")
        + '</section><section aria-labelledby="h-exp"><h2 id="h-exp">Exports that included '
        "you</h2>"
        + _table("Training exports", ["Export", "Written", "Range", "Format"], exports, "exports")
        + '</section><section aria-labelledby="h-rec"><h2 id="h-rec">Erasure receipts</h2>'
        + _table(
            "Receipts",
            ["Erasure", "Finished"],
            [[_e(r.get("erasure_id")), _e(r.get("finished_at"))] for r in receipts],
            "receipts",
        )
        + "</section>"
    )
    return layout("Your data at a glance", body, subject)


def consent_page(
    subject: str,
    scopes: Sequence[str],
    history: Sequence[ConsentChange],
    csrf: str,
    notice: str = "",
) -> str:
    """Each scope with a Grant or Revoke button, then the history of changes."""
    rows = []
    for scope in Scope:
        held = scope.value in scopes
        action, label = ("revoke", "Revoke") if held else ("grant", "Grant")
        rows.append(
            [
                f'<span id="scope-{scope.value}">{_e(scope_text(scope.value))}</span>',
                f'<span data-state="{scope.value}">{"granted" if held else "not granted"}</span>',
                f'<form method="post" action="/consent">{_csrf(csrf)}'
                f'<input type="hidden" name="scope" value="{scope.value}">'
                f'<input type="hidden" name="action" value="{action}">'
                f'<button type="submit" id="{action}-{scope.value}" '
                f'aria-describedby="scope-{scope.value}">{label}</button></form>',
            ]
        )
    hist = [
        [
            str(c.version),
            _e(", ".join(c.scopes) or "(none)"),
            _e(c.changed_by),
            _when(c.changed_at),
            _e(c.reason or ""),
        ]
        for c in reversed(history)
    ]
    note = f'<p role="status" id="notice">{_e(notice)}</p>' if notice else ""
    body = (
        note
        + "<p>A change is applied to everything captured from now on.</p>"
        + _table("Your scopes", ["Scope", "Now", "Change"], rows, "scopes")
        + '<h2 id="h-history">History of changes</h2>'
        + _table(
            "Consent history (newest first)",
            ["Version", "Scopes", "Changed by", "When", "Why"],
            hist,
            "history",
        )
    )
    return layout("Your consent", body, subject)


def events_page(subject: str, events: Sequence[Mapping[str, Any]]) -> str:
    """The latest events, content shown where it was kept."""
    rows = []
    for ev in events:
        content = next(
            (ev[f] for f in ("text", "key_name", "command", "diff", "frame_ref") if ev.get(f)), ""
        )
        rows.append(
            [
                f'<a href="/events/{_e(ev["event_id"])}">{_when(ev["ts"])}</a>',
                _e(ev["event_type"]),
                _e(ev["app_name"]),
                _e(ev.get("window_title")),
                f'<span class="content">{_e(content)}</span>',
                _e(", ".join(ev.get("redactions") or [])),
            ]
        )
    body = (
        "<p>Your latest events as Candor keeps them, shown to you alone. Content appears "
        "only where you consented to it and no redaction rule removed it.</p>"
        + _table(
            "Latest events (newest first)",
            ["When", "Type", "App", "Window", "Content", "Redacted by"],
            rows,
            "events",
        )
    )
    return layout("Your recent events", body, subject)


def record_page(subject: str, title: str, record: Mapping[str, Any]) -> str:
    """One record (an event, a session, an export) as a definition list."""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in record.items())
    return layout(title, f'<dl class="record">{items}</dl>', subject)


def download_page(subject: str) -> str:
    """The download button, with a progress bar the script fills."""
    body = (
        "<p>One zip file with everything Candor holds about you: JSON and Parquet files "
        "and a README that says what each holds.</p>"
        '<p><a class="button" id="download" href="/download/zip" download>'
        "Download all my data (zip)</a></p>"
        '<label for="progress" id="progress-label">Download progress</label> '
        '<progress id="progress" max="100" value="0">0%</progress> '
        '<span id="progress-text" role="status" aria-live="polite"></span>'
    )
    return layout("Download all my data", body, subject)


def erase_page(subject: str, csrf: str) -> str:
    """The confirmation step before erasure."""
    body = (
        "<p>Erasure is final. Candor will:</p><ul>"
        "<li>revoke every consent scope, so nothing more is kept about you;</li>"
        "<li>destroy your data keys, so every encrypted copy becomes unreadable;</li>"
        "<li>delete your events, sessions, activity and actions;</li>"
        "<li>list the training exports that included you, for their owners to recall.</li>"
        "</ul><p>You get a receipt, and you are signed out.</p>"
        f'<form method="post" action="/erase">{_csrf(csrf)}'
        '<p><input type="checkbox" id="confirm" name="confirm" value="yes" required> '
        '<label for="confirm">I understand that my data will be erased for good</label></p>'
        '<p><button type="submit" id="erase">Erase my data</button></p></form>'
    )
    return layout("Erase my data", body, subject)


def receipt_page(receipt: Mapping[str, Any]) -> str:
    """The receipt after erasure (the session has ended), with a download link."""
    text = json.dumps(dict(receipt), indent=2, sort_keys=True, default=str)
    href = "data:application/json;base64," + base64.b64encode(text.encode()).decode()
    rows = [[_e(t), str(n)] for t, n in (receipt.get("rows_deleted") or {}).items()]
    body = (
        '<p role="status" id="erased">Your data was erased. You are signed out.</p>'
        f'<p>Receipt <code id="erasure-id">{_e(receipt.get("erasure_id"))}</code></p>'
        + _table("Rows deleted", ["Table", "Rows"], rows, "deleted")
        + f'<p><a class="button" id="receipt-download" href="{href}" '
        f'download="candor-erasure-{_e(receipt.get("erasure_id"))}.json">'
        "Download the receipt (JSON)</a></p>"
        f'<pre id="receipt">{_e(text)}</pre>'
    )
    return layout("Erasure receipt", body)
