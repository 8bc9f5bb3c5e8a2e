"""Real ClickHouse through clickhouse-connect: bulk insert, read back, survive a restart."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from tests.endpoints import Endpoints

ROWS = 100_000


def _client(endpoints: Endpoints) -> Client:
    u = urlparse(endpoints.clickhouse_url)
    ch = endpoints.settings.clickhouse
    return clickhouse_connect.get_client(
        host=u.hostname,
        port=u.port or 8123,
        username=ch.user,
        password=ch.password.get_secret_value(),
    )


@pytest.fixture
def database(endpoints: Endpoints, unique: str) -> Iterator[str]:
    name = f"it_{unique}"
    client = _client(endpoints)
    client.command(f"CREATE DATABASE {name}")
    yield name
    _client(endpoints).command(f"DROP DATABASE IF EXISTS {name}")


def test_rows_are_read_back_and_survive_a_restart(endpoints: Endpoints, database: str) -> None:
    client = _client(endpoints)
    client.command(f"""CREATE TABLE {database}.activity (
        id UInt64, subject String, app LowCardinality(String), seconds Float64)
        ENGINE = MergeTree ORDER BY id""")
    apps = ["code", "terminal", "browser"]
    client.insert(
        f"{database}.activity",
        [[i, f"s{i % 97}", apps[i % 3], i / 10] for i in range(ROWS)],
        column_names=["id", "subject", "app", "seconds"],
    )

    def snapshot(c: Client) -> tuple[int, int, float, int]:
        row = c.query(
            f"SELECT count(), sum(id), round(sum(seconds), 1), uniqExact(subject) "
            f"FROM {database}.activity"
        ).result_rows[0]
        return int(row[0]), int(row[1]), float(row[2]), int(row[3])

    expected = (ROWS, ROWS * (ROWS - 1) // 2, round(sum(i / 10 for i in range(ROWS)), 1), 97)
    assert snapshot(client) == expected

    endpoints.restart("clickhouse")
    assert snapshot(_client(endpoints)) == expected
