"""On the local stack, the portal reads ClickHouse as `candor_portal_user`, and runs
in the background until `candor stack down`.

`deploy/local/clickhouse.sh start` (on a private directory and free ports)
declares the portal's role and login in its config.d with a generated password
kept 0600; the portal `candor.stack.start_portal` leaves running (as the demo
does) logs in as that user, with no password on its command line; that user
reads the person's tables and writes the audit log, and nothing else."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from clickhouse_connect.driver.exceptions import DatabaseError
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from backends.kafka.topics import create_topics
from candor import stack
from candor.portal.access import PORTAL_USER
from candor.portal.app import reader_settings
from candor.portal.cli import invite_link
from candor.portal.local_access import FRAGMENT_NAME, password_file
from candor.settings import Settings, replace
from sinks.migrate import migrate
from tests.harness import REPO, free_port
from tests.integration.portal.people import MASTER, seed_person

pytestmark = pytest.mark.integration

TOKEN = re.compile(r'name="token" value="([^"]+)"')


def _script(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "deploy/local/clickhouse.sh"), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def local_ch(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    """The local stack's ClickHouse script on a private home and free ports."""
    http, tcp = free_port(), free_port()
    s = replace(
        settings,
        home=tmp_path / "home",
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"portal-ls-{unique}.", "partitions": 1},
        clickhouse={"url": f"http://127.0.0.1:{http}", "database": "candor_portal_ls"},
        portal={"public_url": f"http://127.0.0.1:{free_port()}"},
    )
    env = {
        **os.environ,
        "CANDOR_HOME": str(s.home),
        "CANDOR_PYTHON": sys.executable,
        "CANDOR_CLICKHOUSE_HTTP_PORT": str(http),
        "CANDOR_CLICKHOUSE_TCP_PORT": str(tcp),
        "CANDOR_CLICKHOUSE__DATABASE": s.clickhouse.database,
    }
    env.pop("CANDOR_PORTAL__CLICKHOUSE_PASSWORD", None)
    started = _script(env, "start")
    assert started.returncode == 0, started.stderr
    try:
        create_topics(s)
        migrate(s)
        yield s
    finally:
        stack.stop_portal(s)
        _script(env, "stop")


def test_local_stack_portal_reads_as_its_least_privilege_user(local_ch: Settings) -> None:
    s = local_ch
    secret = password_file(s)
    fragment = s.home / "clickhouse" / "config.d" / FRAGMENT_NAME
    password = secret.read_text().strip()
    assert len(password) >= 24
    for private in (secret, fragment):  # never world-readable
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert password not in fragment.read_text()  # only its hash
    assert password not in (s.home / "clickhouse" / "config.xml").read_text()

    alice = seed_person(s, "subj-alice", 1_790_000_000_000_000)
    assert stack.start_portal(s), (s.home / "logs" / "portal.log").read_text()
    pid = int((s.home / "portal" / "portal.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--clickhouse-password-file" in cmdline
    assert password.encode() not in b" ".join(cmdline)

    http = requests.Session()
    token = TOKEN.search(http.get(invite_link(s, alice.subject), timeout=30).text)
    assert token is not None
    assert (
        http.post(
            f"{s.portal.public_url}/signin", data={"token": token.group(1)}, timeout=30
        ).status_code
        == 200
    )
    for path in ("/", "/events", "/consent"):
        page = http.get(s.portal.public_url + path, timeout=60)
        assert page.status_code == 200, path

    reader_cfg = replace(
        s, portal={"clickhouse_user": PORTAL_USER, "clickhouse_password": SecretStr(password)}
    )
    reader = connect(reader_settings(reader_cfg))
    assert reader.query("SELECT currentUser()").result_rows[0][0] == PORTAL_USER
    assert reader.query("SELECT count() FROM events").result_rows[0][0] == 3
    views = reader.query(
        "SELECT count() FROM audit_log WHERE actor = {a:String} AND action = 'portal_view'",
        parameters={"a": f"portal:{alice.subject}"},
    ).result_rows[0][0]
    assert views >= 4  # the page after sign-in and the three above
    for denied in (
        "SELECT count() FROM subject_keys",
        "SELECT count() FROM dead_letters",
        "SELECT count() FROM key_store_check",
        "INSERT INTO events (event_id) VALUES ('forged')",
        "INSERT INTO consent_ledger (subject_id) VALUES ('x')",
        "ALTER TABLE events DELETE WHERE 1 SETTINGS mutations_sync = 2",
        "CREATE TABLE portal_made (x UInt8) ENGINE = Memory",
        "DROP TABLE audit_log",
    ):
        with pytest.raises(DatabaseError, match=r"ACCESS_DENIED|Not enough privileges"):
            reader.command(denied)
    admin = connect(s)
    assert admin.query("SELECT count() FROM events").result_rows[0][0] == 3  # none forged/deleted
    assert (
        admin.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() "
            "AND name = 'portal_made'"
        ).result_rows[0][0]
        == 0
    )


def test_a_portal_whose_login_is_refused_does_not_start(local_ch: Settings, tmp_path: Path) -> None:
    """Never falls back to the admin: a wrong password stops `portal serve` at once."""
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    port = int(local_ch.portal.public_url.rsplit(":", 1)[1])
    env = {
        **os.environ,
        "CANDOR_HOME": str(local_ch.home),
        "CANDOR_CLICKHOUSE_URL": local_ch.clickhouse.url,
        "CANDOR_CLICKHOUSE__DATABASE": local_ch.clickhouse.database,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "candor.cli",
            "portal",
            "serve",
            "--port",
            str(port),
            "--clickhouse-password-file",
            str(wrong),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"refuses the portal's user '{PORTAL_USER}'" in proc.stderr


def test_the_portal_runs_in_the_background_until_stopped(local_ch: Settings) -> None:
    """Started in the background like the servers (as the demo leaves it),
    answering, stopped by `candor stack down`'s portal step."""
    s = local_ch
    assert not stack.portal_serving(s)
    try:
        assert stack.start_portal(s), (s.home / "logs" / "portal.log").read_text()
        assert stack.portal_serving(s)
        assert stack.start_portal(s)  # already serving: nothing more started
    finally:
        stack.stop_portal(s)
    for _ in range(50):
        if not stack.portal_serving(s):
            break
        time.sleep(0.2)
    assert not stack.portal_serving(s)
    assert not (s.home / "portal" / "portal.pid").exists()
