"""(d) The analyst role reads the team views and gets an access error on every
raw table and on the key store; the views count only consenting people and only
groups of at least 5.

Runs against the shared ClickHouse when it declares the analyst role (the local
stack started with the current deploy/local/clickhouse_server.py); otherwise a
private ClickHouse is started from that same launcher for this module.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from backends.clickhouse.analyst_access import (
    ANALYST_ROLE,
    ANALYST_USER,
    LOCAL_ANALYST_PASSWORD,
    analyst_database,
    ensure_analyst_access,
)
from backends.clickhouse.connection import connect
from candor.settings import Settings, replace
from sinks.migrate import migrate
from sinks.rows import CONSENT_COLUMNS, MINUTE_COLUMNS, consent_row, minute_row
from tests.harness import REPO, free_port, wait_until
from tests.unit.sinks.sinks_samples import MINUTE, consent

pytestmark = pytest.mark.integration

RAW = (
    "events",
    "sessions",
    "activity_minutes",
    "activity_minutes_by_device",
    "actions",
    "consent_ledger",
    "audit_log",
    "exports",
    "subject_keys",
    "key_store_check",
    "daily_app_time",
)


def _has_analyst_role(s: Settings) -> bool:
    try:
        rows = connect(s, database="").query("SELECT name FROM system.roles").result_rows
    except DatabaseError:
        return False
    return (ANALYST_ROLE,) in rows


@pytest.fixture(scope="module")
def analyst_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    if _has_analyst_role(settings):
        yield settings
        return
    state = tmp_path_factory.mktemp("analyst-clickhouse")
    http = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "deploy/local/clickhouse_server.py"),
            "--dir",
            str(state),
            "--http-port",
            str(http),
            "--tcp-port",
            str(free_port()),
        ],
        stdout=(state / "stdout.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    own = replace(settings, clickhouse={"url": f"http://127.0.0.1:{http}"})

    def up() -> bool:
        try:
            connect(own, database="").query("SELECT 1")
            return True
        except Exception:
            return False

    try:
        wait_until(up, 60, "private ClickHouse", alive=lambda: proc.poll() is None)
        yield own
    finally:
        with contextlib.suppress(Exception):  # stopped below by signal anyway
            connect(own, database="").command(
                "KILL QUERY WHERE query LIKE '%candor-clickhouse-serve%' "
                "AND query NOT LIKE '%system.processes%' AND query NOT LIKE 'KILL%' SYNC"
            )
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def analyst_db(analyst_server: Settings, unique: str) -> Iterator[Settings]:
    s = replace(analyst_server, clickhouse={"database": f"candor_analyst_it_{unique}"})
    migrate(s)
    yield s
    admin = connect(s, database="")
    admin.command(f"DROP DATABASE IF EXISTS {analyst_database(s)}")
    admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


def _analyst(s: Settings) -> clickhouse_connect.driver.client.Client:
    url = s.clickhouse.url.rsplit(":", 1)
    return clickhouse_connect.get_client(
        host="127.0.0.1",
        port=int(url[1]),
        username=ANALYST_USER,
        password=LOCAL_ANALYST_PASSWORD,
        database=analyst_database(s),
        autogenerate_session_id=False,
    )


def _fill(s: Settings, org: str, people: int, consenting: int) -> None:
    client = connect(s)
    minute = int(time.time()) // 60 * 60_000_000
    ids = [f"{org}-p{i}" for i in range(people)]
    ledger = [
        dict(
            consent(
                p,
                1,
                ["activity_metadata", "analytics"] if i < consenting else ["activity_metadata"],
            ),
            org_id=org,
        )
        for i, p in enumerate(ids)
    ]
    client.insert("consent_ledger", [consent_row(c) for c in ledger], column_names=CONSENT_COLUMNS)
    rows = [
        dict(MINUTE, org_id=org, subject_id=p, window_start=minute, device_id=f"d-{p}") for p in ids
    ]
    client.insert(
        "activity_minutes_by_device", [minute_row(m) for m in rows], column_names=MINUTE_COLUMNS
    )


def test_analyst_reads_views_only(analyst_db: Settings) -> None:
    s = analyst_db
    access = ensure_analyst_access(s, LOCAL_ANALYST_PASSWORD)
    assert access.database == analyst_database(s)
    _fill(s, "big", people=7, consenting=6)  # 6 consenting people: shown
    _fill(s, "small", people=6, consenting=4)  # only 4 consenting: hidden
    analyst = _analyst(s)
    rows = analyst.query("SELECT org_id, people, keys FROM team_daily_activity").result_rows
    assert [(org, people) for org, people, _ in rows] == [("big", 6)]
    # totals carry Laplace noise of scale 20000 keys (migration 0006): |noise| < 15 b
    assert abs(rows[0][2] - 6 * MINUTE["keys"]) < 15 * 20_000
    apps = analyst.query("SELECT org_id, app, people FROM team_daily_app_time").result_rows
    assert apps == [("big", "code", 6)]
    with pytest.raises(DatabaseError):  # the noise seed is not the analysts'
        analyst.query(f"SELECT * FROM {s.clickhouse.database}.analyst_noise_seed")
    for table in RAW:
        with pytest.raises(DatabaseError) as err:
            analyst.query(f"SELECT * FROM {s.clickhouse.database}.{table} LIMIT 1")
        assert "ACCESS_DENIED" in str(err.value) or "497" in str(err.value), table
    with pytest.raises(DatabaseError):
        analyst.command(f"INSERT INTO {s.clickhouse.database}.audit_log (actor) VALUES ('x')")
