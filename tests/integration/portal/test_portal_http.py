"""The portal over HTTP against real ClickHouse and Kafka: sign-in, isolation
between people, CSRF, rate limits, audit, consent changes, download, erasure."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pyarrow.parquet as pq
import pytest
import requests

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many, load_registry
from candor.portal.cli import store_path
from candor.portal.store import PortalStore
from candor.settings import Settings, replace
from privacy.consent import ConsentPolicy
from privacy.scope import parse_scopes
from tests.integration.portal.people import Person
from tests.integration.portal.server import PortalThread

pytestmark = pytest.mark.integration

TOKEN = re.compile(r'name="token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(portal: PortalThread, subject: str) -> requests.Session:
    """A browser-like session signed in through an invite link."""
    http = requests.Session()
    page = http.get(portal.invite(subject), timeout=30)
    assert page.status_code == 200
    token = TOKEN.search(page.text)
    assert token is not None
    answer = http.post(
        f"{portal.url}/signin", data={"token": token.group(1)}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303, answer.text
    return http


def csrf_of(http: requests.Session, url: str) -> str:
    found = CSRF.search(http.get(url, timeout=30).text)
    assert found is not None
    return found.group(1)


def test_invite_signs_in_once_with_a_strict_httponly_cookie(
    portal: PortalThread, people: tuple[Person, Person]
) -> None:
    alice, _ = people
    link = portal.invite(alice.subject)
    token = link.split("token=", 1)[1]
    answer = requests.post(
        f"{portal.url}/signin", data={"token": token}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http here; https public_url turns it on
    again = requests.post(f"{portal.url}/signin", data={"token": token}, timeout=30)
    assert again.status_code == 403  # one-time
    # the store keeps only the hash of the token
    raw = store_path(portal.settings).read_bytes()
    assert token.encode() not in raw
    expired = portal.invite(alice.subject, ttl_s=-1).split("token=", 1)[1]
    assert (
        requests.post(f"{portal.url}/signin", data={"token": expired}, timeout=30).status_code
        == 403
    )


def test_the_cookie_is_secure_behind_tls(
    portal_settings: Settings, people: tuple[Person, Person]
) -> None:
    alice, _ = people
    # what an https public_url also sets
    secure = replace(portal_settings, portal={"secure_cookies": True})
    server = PortalThread(secure).start()
    try:
        token = server.invite(alice.subject).split("token=", 1)[1]
        answer = requests.post(
            f"{server.url}/signin", data={"token": token}, allow_redirects=False, timeout=30
        )
        assert answer.status_code == 303
        assert "Secure" in answer.headers["Set-Cookie"]
    finally:
        server.stop()


def test_every_page_needs_a_session(portal: PortalThread, people: tuple[Person, Person]) -> None:
    alice, _ = people
    for path in (
        "/",
        "/consent",
        "/events",
        f"/events/{alice.event_id}",
        f"/sessions/{alice.session_id}",
        f"/exports/{alice.export_id}",
        "/download",
        "/download/zip",
        "/erase",
    ):
        assert requests.get(portal.url + path, timeout=30).status_code == 401, path
    assert (
        requests.post(portal.url + "/erase", data={"confirm": "yes"}, timeout=30).status_code == 401
    )


def test_a_person_never_sees_another_persons_data(
    portal: PortalThread, people: tuple[Person, Person]
) -> None:
    alice, bob = people
    http = sign_in(portal, alice.subject)
    for path in (
        f"/events/{bob.event_id}",
        f"/sessions/{bob.session_id}",
        f"/exports/{bob.export_id}",
    ):
        answer = http.get(portal.url + path, timeout=30)
        assert answer.status_code in (403, 404), path
        assert bob.subject not in answer.text
    for path in (
        f"/events/{alice.event_id}",
        f"/sessions/{alice.session_id}",
        f"/exports/{alice.export_id}",
    ):
        assert http.get(portal.url + path, timeout=30).status_code == 200, path
    for path in (
        "/",
        "/events",
        "/consent",
        f"/?subject={bob.subject}",
        f"/events?subject={bob.subject}",
    ):
        page = http.get(portal.url + path, timeout=30)
        assert page.status_code == 200
        assert bob.subject not in page.text and "subjbob" not in page.text, path
    events = http.get(portal.url + "/events", timeout=30).text
    assert f"typed by {alice.subject}" in events
    home = http.get(portal.url + "/", timeout=30).text
    assert 'data-metric="total-events">3<' in home
    assert 'data-rule="secret">1<' in home
    # the download holds Alice's rows only
    archive = zipfile.ZipFile(
        io.BytesIO(http.get(portal.url + "/download/zip", timeout=60).content)
    )
    events_table = pq.read_table(io.BytesIO(archive.read("tables/events.parquet")))
    assert set(events_table.column("subject_id").to_pylist()) == {alice.subject}
    assert bob.subject.encode() not in b"".join(archive.read(n) for n in archive.namelist())


def test_state_changes_need_the_sessions_csrf_token(
    portal: PortalThread, people: tuple[Person, Person]
) -> None:
    alice, _ = people
    http = sign_in(portal, alice.subject)
    for path, form in (
        ("/consent", {"scope": "analytics", "action": "grant"}),
        ("/erase", {"confirm": "yes"}),
        ("/signout", {}),
    ):
        assert http.post(portal.url + path, data=form, timeout=30).status_code == 403, path
        bad = {**form, "csrf": "not-the-token"}
        assert http.post(portal.url + path, data=bad, timeout=30).status_code == 403, path
    assert (
        connect(portal.settings)
        .query(
            "SELECT count() FROM events WHERE subject_id = {s:String}",
            parameters={"s": alice.subject},
        )
        .result_rows[0][0]
        == 3
    )


def test_sign_in_and_downloads_are_rate_limited(
    portal_settings: Settings, people: tuple[Person, Person]
) -> None:
    alice, _ = people
    limited_settings = replace(
        portal_settings, portal={"signin_per_minute": 3, "downloads_per_hour": 1}
    )
    server = PortalThread(limited_settings).start()
    try:
        codes = [
            requests.post(
                f"{server.url}/signin", data={"token": f"guess-{i}"}, timeout=30
            ).status_code
            for i in range(5)
        ]
        assert codes[:3] == [403, 403, 403]
        assert codes[3:] == [429, 429]
        server.portal.signin_limit.take("reset", 0)  # a fresh window for the real sign-in
        server.portal.signin_limit = type(server.portal.signin_limit)(3, 60.0)
        http = sign_in(server, alice.subject)
        assert http.get(server.url + "/download/zip", timeout=60).status_code == 200
        limited = http.get(server.url + "/download/zip", timeout=60)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    finally:
        server.stop()


def test_views_and_actions_are_audited(portal: PortalThread, people: tuple[Person, Person]) -> None:
    alice, _ = people
    http = sign_in(portal, alice.subject)
    http.get(portal.url + "/events", timeout=30)
    http.get(portal.url + f"/sessions/{alice.session_id}", timeout=30)
    rows = (
        connect(portal.settings)
        .query(
            "SELECT action, actor, detail FROM audit_log WHERE subject = {s:String} ORDER BY at",
            parameters={"s": alice.subject},
        )
        .result_rows
    )
    actions = [r[0] for r in rows]
    assert "portal_signin" in actions
    paths = [json.loads(r[2]).get("path") for r in rows if r[0] == "portal_view"]
    assert "/events" in paths and f"/sessions/{alice.session_id}" in paths
    assert all(r[1] == f"portal:{alice.subject}" for r in rows)


def test_consent_change_goes_to_the_registry_and_erasure_ends_the_session(
    portal: PortalThread, people: tuple[Person, Person]
) -> None:
    alice, bob = people
    s = portal.settings
    for person in (alice, bob):
        grant_many(
            s,
            [
                ConsentPolicy(
                    person.subject,
                    "org-t",
                    1,
                    parse_scopes(["activity_metadata", "keystroke_content"]),
                    "candor-cli",
                    time.time_ns() // 1000,
                )
            ],
            "test",
        )
    http = sign_in(portal, alice.subject)
    csrf = csrf_of(http, portal.url + "/consent")
    page = http.post(
        portal.url + "/consent",
        timeout=60,
        data={"csrf": csrf, "scope": "keystroke_content", "action": "revoke"},
    )
    assert page.status_code == 200
    assert "keystroke_content revoked (consent version 2)" in page.text
    policy = load_registry(s).get(alice.subject)
    assert policy is not None and policy.version == 2
    assert [x.value for x in policy.scopes] == ["activity_metadata"]
    assert policy.changed_by == f"portal:{alice.subject}"
    receipt_page = http.post(
        portal.url + "/erase",
        timeout=120,
        data={"csrf": csrf_of(http, portal.url + "/erase"), "confirm": "yes"},
    )
    assert receipt_page.status_code == 200
    assert "Your data was erased" in receipt_page.text
    assert http.get(portal.url + "/", timeout=30).status_code == 401  # session ended
    client = connect(s)
    count = "SELECT count() FROM events WHERE subject_id = {s:String}"
    assert client.query(count, parameters={"s": alice.subject}).result_rows[0][0] == 0
    assert client.query(count, parameters={"s": bob.subject}).result_rows[0][0] == 3
    receipt = client.query(
        "SELECT detail FROM audit_log WHERE action = 'erase' AND subject = {s:String}",
        parameters={"s": alice.subject},
    ).result_rows
    assert len(receipt) == 1
    assert json.loads(receipt[0][0])["erasure_id"] in receipt_page.text
    assert PortalStore(store_path(s)).session("x", time.time()) is None
