"""The portal's HTML: escaped, accessible, every form with the CSRF token, numbers marked."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

from candor.portal import pages
from candor.portal.app import _notice
from candor.portal.data import ConsentChange, DaySummary, ExportHeld, Overview
from privacy.scope import Scope

EVIL = '<script>alert("x")</script>'
AT = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


class Forms(HTMLParser):
    """Collects forms (attributes as ``@name``, hidden inputs by name) and element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.labels_for: set[str] = set()
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "form":
            self.forms.append({"@method": a.get("method", ""), "@action": a.get("action", "")})
        if tag == "input" and a.get("type") == "hidden" and self.forms:
            self.forms[-1][a["name"]] = a.get("value", "")
        if tag == "label":
            self.labels_for.add(a.get("for", ""))


def parse(html: str) -> Forms:
    p = Forms()
    p.feed(html)
    return p


def overview() -> Overview:
    day = DaySummary(
        date(2026, 11, 29), {"KeyInput": 7, "MouseClick": 3}, {"code": 120.0}, sessions=2
    )
    return Overview([day], {"secret:aws_key": 4}, [ExportHeld("x-1", AT, AT, AT, "parquet", 9)])


def test_every_value_is_escaped() -> None:
    html = pages.home_page(
        EVIL, ["keystroke_content"], {"weekdays": [EVIL]}, overview(), [{"erasure_id": EVIL}], []
    )
    assert EVIL not in html and "&lt;script&gt;" in html


def test_the_numbers_are_marked_for_comparison() -> None:
    html = pages.home_page("subj-a", [], None, overview(), [], [])
    assert 'data-metric="total-events">10<' in html
    assert 'data-metric="total-sessions">2<' in html
    assert 'data-metric="day-events" data-day="2026-11-29">10<' in html
    assert 'data-metric="redaction" data-rule="secret:aws_key">4<' in html
    assert html.count('role="img"') == 2
    assert "any hour" in html


def test_every_consent_form_posts_the_csrf_token_and_every_scope_has_a_button() -> None:
    history = [ConsentChange(1, ["activity_metadata", "keystroke_content"], "hr", AT, "hired")]
    html = pages.consent_page(
        "subj-a", ["activity_metadata", "keystroke_content"], history, "tok-123"
    )
    doc = parse(html)
    forms = [f for f in doc.forms if f["@action"] == "/consent"]
    assert len(forms) == len(Scope)
    assert all(f["@method"] == "post" and f["csrf"] == "tok-123" for f in forms)
    actions = {f["scope"]: f["action"] for f in forms}
    assert actions["keystroke_content"] == "revoke" and actions["analytics"] == "grant"
    assert "revoke-keystroke_content" in doc.ids and "grant-analytics" in doc.ids
    assert "hired" in html


def test_the_erase_step_needs_a_labelled_confirmation_and_the_token() -> None:
    doc = parse(pages.erase_page("subj-a", "tok-9"))
    (form,) = [f for f in doc.forms if f["@action"] == "/erase"]
    assert form["csrf"] == "tok-9"
    assert "confirm" in doc.labels_for


def test_the_receipt_is_downloadable_as_the_same_json() -> None:
    receipt = {"erasure_id": "e-1", "subject": "subj-a", "rows_deleted": {"events": 12}}
    html = pages.receipt_page(receipt)
    href = re.search(r'href="data:application/json;base64,([^"]+)"', html)
    assert href is not None
    assert json.loads(base64.b64decode(href.group(1))) == receipt
    assert "Sign out" not in html  # the session has ended: no navigation


def test_every_page_has_a_language_a_skip_link_and_one_main() -> None:
    for html in (
        pages.message_page("t", "x"),
        pages.download_page("s"),
        pages.events_page("s", []),
    ):
        doc = parse(html)
        assert doc.lang == "en"
        assert doc.ids.count("main") == 1
        assert 'href="#main"' in html


def test_an_unknown_scope_is_still_shown() -> None:
    assert pages.scope_text("brand_new_scope") == "Brand new scope"


def test_the_notice_after_a_change_accepts_only_known_scopes_and_actions() -> None:
    assert _notice({"scope": "keystroke_content", "done": "revoke", "v": "3"}).startswith(
        "keystroke_content revoked (consent version 3)"
    )
    assert _notice({"scope": EVIL, "done": "revoke", "v": "3"}) == ""
    assert _notice({"scope": "analytics", "done": "delete", "v": "3"}) == ""
