"""The portal reads ClickHouse as `candor_portal_user`, who can read the person's
tables and append to the audit log, and nothing else: not the key store, not
the dead letters, no mutation. On a private ClickHouse whose configuration
declares that user (the chdb engine takes users only from configuration)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from clickhouse_connect.driver.exceptions import DatabaseError
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from backends.kafka.topics import create_topics
from candor.portal.access import PORTAL_USER, ensure_portal_access
from candor.portal.app import reader_settings
from candor.settings import Settings, replace
from sinks.migrate import migrate
from tests.harness import free_port
from tests.integration.portal import portal_clickhouse
from tests.integration.portal.people import MASTER, seed_person
from tests.integration.portal.server import PortalThread

pytestmark = pytest.mark.integration

PASSWORD = "portal-test-password"
TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def private_ch(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    http, tcp = free_port(), free_port()
    s = replace(
        settings,
        home=tmp_path / "home",
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"portal-lp-{unique}.", "partitions": 1},
        clickhouse={"url": f"http://127.0.0.1:{http}", "database": "candor_portal_lp"},
        portal={"clickhouse_user": PORTAL_USER, "clickhouse_password": SecretStr(PASSWORD)},
    )
    proc = portal_clickhouse.start(
        tmp_path / "clickhouse", http, tcp, s.clickhouse.database, PASSWORD
    )
    try:
        create_topics(s)
        migrate(s)
        yield s
    finally:
        portal_clickhouse.stop(proc, http)


def test_the_portal_reads_as_its_own_user_and_that_user_can_do_nothing_else(
    private_ch: Settings,
) -> None:
    s = private_ch
    assert ensure_portal_access(s, PASSWORD) is False  # configured, verified
    alice = seed_person(s, "subj-alice", 1_790_000_000_000_000)
    portal = PortalThread(s).start()
    try:
        http = requests.Session()
        token = TOKEN.search(http.get(portal.invite(alice.subject), timeout=30).text)
        assert token is not None
        http.post(f"{portal.url}/signin", data={"token": token.group(1)}, timeout=30)
        for path in ("/", "/events", "/consent", f"/sessions/{alice.session_id}", "/download/zip"):
            assert http.get(portal.url + path, timeout=60).status_code == 200, path
    finally:
        portal.stop()
    reader = connect(reader_settings(s))
    assert reader.query("SELECT currentUser()").result_rows[0][0] == PORTAL_USER
    views = reader.query(
        "SELECT count() FROM audit_log WHERE actor = {a:String} AND action = 'portal_view'",
        parameters={"a": f"portal:{alice.subject}"},
    ).result_rows[0][0]
    assert views == 6  # the page after sign-in and the five above, written by the portal's user
    for denied in (
        "SELECT count() FROM subject_keys",
        "SELECT count() FROM dead_letters",
        "SELECT count() FROM key_store_check",
        "ALTER TABLE events DELETE WHERE 1 SETTINGS mutations_sync = 2",
        "INSERT INTO consent_ledger (subject_id) VALUES ('x')",
        "DROP TABLE audit_log",
    ):
        with pytest.raises(DatabaseError, match=r"ACCESS_DENIED|Not enough privileges"):
            reader.command(denied)
    assert connect(s).query("SELECT count() FROM events").result_rows[0][0] == 3  # none deleted
