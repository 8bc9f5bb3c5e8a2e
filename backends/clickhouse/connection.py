"""One way to open a ClickHouse client from Candor's settings."""

from __future__ import annotations

from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from backends.clickhouse.settings import ClickHouseSettings, HasClickHouse


def connect(settings: ClickHouseSettings | HasClickHouse, database: str | None = None) -> Client:
    """Return a clickhouse-connect HTTP client for ``settings`` (the `clickhouse`
    section, or settings that carry one).

    ``database`` overrides the settings' database ("" for the server default,
    needed before the database exists). Blocks for the connection handshake;
    raises clickhouse_connect's `OperationalError` when the server does not
    answer. A client is not thread-safe: open one per thread.
    """
    ch = settings if isinstance(settings, ClickHouseSettings) else settings.clickhouse
    url = urlparse(ch.url)
    return clickhouse_connect.get_client(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8443 if url.scheme == "https" else 8123),
        secure=url.scheme == "https",
        username=ch.user,
        password=ch.password.get_secret_value(),
        database=ch.database if database is None else database,
        # No HTTP session: a session serialises queries and locks on concurrent use.
        autogenerate_session_id=False,
    )
