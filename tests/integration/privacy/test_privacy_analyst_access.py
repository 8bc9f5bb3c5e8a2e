"""`candor analyst-access` on a real ClickHouse (the local stack's engine, in a
private server): no constant password outside the local stack, a generated
password stored 0600 and only hashed in the server, rotation, the read-only
profile, the hourly quota and the host restriction all hold at login."""

from __future__ import annotations

import argparse
import contextlib
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from backends.clickhouse.analyst_access import (
    ANALYST_USER,
    LOCAL_ANALYST_PASSWORD,
    analyst_database,
)
from backends.clickhouse.connection import connect
from candor.privacy_cli import add_commands
from candor.settings import Settings, replace
from sinks.migrate import migrate
from tests.harness import REPO, free_port, wait_until

pytestmark = pytest.mark.integration


class PrivateClickHouse:
    """The local stack's ClickHouse launcher on a private directory and ports."""

    def __init__(self, state: Path, settings: Settings) -> None:
        self.state = state
        self.http = free_port()
        self.tcp = free_port()
        self.settings = replace(settings, clickhouse={"url": f"http://127.0.0.1:{self.http}"})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "deploy/local/clickhouse_server.py"),
                "--dir",
                str(self.state),
                "--http-port",
                str(self.http),
                "--tcp-port",
                str(self.tcp),
            ],
            stdout=(self.state / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        proc = self.proc

        def up() -> bool:
            try:
                connect(self.settings, database="").query("SELECT 1")
                return True
            except Exception:
                return False

        wait_until(up, 60, "private ClickHouse", alive=lambda: proc.poll() is None)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            connect(self.settings, database="").command(
                "KILL QUERY WHERE query LIKE '%candor-clickhouse-serve%' "
                "AND query NOT LIKE '%system.processes%' AND query NOT LIKE 'KILL%' SYNC"
            )
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def server(settings: Settings, tmp_path: Path, unique: str) -> Iterator[PrivateClickHouse]:
    state = tmp_path / "clickhouse"
    state.mkdir()
    ch = PrivateClickHouse(state, settings)
    ch.settings = s = replace(
        ch.settings,
        home=tmp_path / "home",
        local_stack=False,  # what a production process sees
        privacy={"analyst_password": None, "analyst_queries_per_hour": 12},
        clickhouse={"database": f"candor_access_{unique}"},
    )
    ch.start()
    try:
        migrate(s)
        yield ch
    finally:
        ch.stop()


def cli(s: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    handlers = add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return handlers[args.command](args, s)


def analyst(s: Settings, password: str) -> clickhouse_connect.driver.client.Client:
    port = int(s.clickhouse.url.rsplit(":", 1)[1])
    return clickhouse_connect.get_client(
        host="127.0.0.1",
        port=port,
        username=ANALYST_USER,
        password=password,
        database=analyst_database(s),
        autogenerate_session_id=False,
    )


def refused(s: Settings, password: str) -> str:
    with pytest.raises(DatabaseError) as err:
        analyst(s, password).query("SELECT 1")
    return str(err.value)


def test_generated_password_rotation_profile_quota_and_hosts(
    server: PrivateClickHouse, capsys: pytest.CaptureFixture[str]
) -> None:
    s = server.settings
    config_dir = server.state / "config.d"
    assert cli(s, "analyst-access", "--config-dir", str(config_dir)) == 0
    out = capsys.readouterr().out
    secret_file = s.home / "privacy" / "analyst.password"
    assert f"new password generated: {secret_file}" in out
    assert f"{config_dir / 'candor_analyst.xml'}: restart ClickHouse" in out
    password = secret_file.read_text().strip()
    assert password != LOCAL_ANALYST_PASSWORD and len(password) >= 24
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    fragment = (config_dir / "candor_analyst.xml").read_text()
    assert password not in fragment  # only its hash

    server.restart()
    client = analyst(s, password)
    assert client.query("SELECT count() FROM team_daily_activity").result_rows == [(0,)]
    assert "AUTHENTICATION_FAILED" in refused(s, LOCAL_ANALYST_PASSWORD)
    # read-only profile: no writes, no lifting its limits
    assert client.query("SELECT getSetting('readonly')").result_rows == [(2,)]
    with pytest.raises(DatabaseError, match="readonly"):
        client.query("SELECT 1", settings={"readonly": 0})
    with pytest.raises(DatabaseError, match=r"SETTING_CONSTRAINT_VIOLATION|constraint"):
        client.query("SELECT 1", settings={"max_execution_time": 100_000})
    # hourly quota: 12 queries, then refused (a constant SELECT 1 is not counted)
    errors = []
    for _ in range(14):
        try:
            client.query("SELECT sum(number) FROM numbers(10)")
        except DatabaseError as err:
            errors.append(str(err))
    assert errors and "QUOTA_EXCEEDED" in errors[-1]

    # a second run without --rotate keeps the password; --rotate replaces it
    assert cli(s, "analyst-access", "--config-dir", str(config_dir)) == 0
    assert secret_file.read_text().strip() == password
    assert cli(s, "analyst-access", "--rotate", "--config-dir", str(config_dir)) == 0
    rotated = secret_file.read_text().strip()
    assert rotated != password
    server.restart()
    assert analyst(s, rotated).query("SELECT 1").result_rows == [(1,)]
    assert "AUTHENTICATION_FAILED" in refused(s, password)

    # host restriction: only the configured networks may log in
    s = replace(s, privacy={"analyst_networks": ["10.20.30.0/24"]})
    assert cli(s, "analyst-access", "--config-dir", str(config_dir)) == 0
    server.restart()
    assert "AUTHENTICATION_FAILED" in refused(s, rotated)
