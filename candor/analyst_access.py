"""Analyst access: the role ``candor_analyst`` may read the analyst views only.

Migration 0004 creates the views in the database ``analyst_<db>``; this module
gives the role ``candor_analyst`` ``SELECT`` on that database and nothing else,
and makes the login ``candor_analyst_user`` hold the role. Access control is
not in a migration because it needs a *writable* access storage and a user
with ``access_management``, which not every server has: ClickHouse run from
the chdb-core engine (the local stack) only reads users and roles from its
configuration. There, `deploy/local/clickhouse_server.py` declares the role
(``GRANT SELECT ON analyst_*.*``) and the user, and :func:`ensure_analyst_access`
only verifies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from candor.settings import Settings

__all__ = [
    "ANALYST_ROLE",
    "ANALYST_USER",
    "AccessControlUnavailable",
    "AnalystAccess",
    "analyst_database",
    "ensure_analyst_access",
]

ANALYST_ROLE = "candor_analyst"
ANALYST_USER = "candor_analyst_user"
# The local stack's documented default (deploy/local/clickhouse_server.py).
LOCAL_ANALYST_PASSWORD = "candor-analyst-local"


class AccessControlUnavailable(RuntimeError):
    """The server can neither create the role and user by SQL nor has them
    configured; the message says what to configure."""


@dataclass(frozen=True)
class AnalystAccess:
    """Where analysts connect and what they read."""

    user: str
    role: str
    database: str
    created: bool  # False: found in the server's configuration


def analyst_database(settings: Settings) -> str:
    """The database holding the analyst views of ``settings.clickhouse.database``."""
    return f"analyst_{settings.clickhouse.database}"


def _quote(text: str) -> str:
    """A ClickHouse string literal (DDL takes no query parameters)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _writable_storage(client: Client) -> bool:
    rows = client.query("SELECT type FROM system.user_directories").result_rows
    return any(str(t) in ("local_directory", "replicated", "memory") for (t,) in rows)


def ensure_analyst_access(settings: Settings, password: str, client: Client | None = None
                          ) -> AnalystAccess:
    """Create (or verify) the analyst role and user; return where they read.

    With a writable access storage: ``CREATE ROLE/USER IF NOT EXISTS``, grant
    ``SELECT ON analyst_<db>.*`` to the role and the role to the user (idempotent;
    an existing user keeps its password). Without one: verify the configured role
    and user, else raise :class:`AccessControlUnavailable`. Blocks on ClickHouse.
    """
    from sinks.connection import connect

    client = client or connect(settings, database="")
    database = analyst_database(settings)
    cluster = settings.clickhouse.cluster
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    if _writable_storage(client):
        client.command(f"CREATE ROLE IF NOT EXISTS {ANALYST_ROLE}{on_cluster}")
        client.command(f"GRANT{on_cluster} SELECT ON {database}.* TO {ANALYST_ROLE}")
        client.command(
            f"CREATE USER IF NOT EXISTS {ANALYST_USER}{on_cluster} IDENTIFIED WITH "
            f"sha256_password BY {_quote(password)}")
        client.command(f"GRANT{on_cluster} {ANALYST_ROLE} TO {ANALYST_USER}")
        client.command(f"ALTER USER {ANALYST_USER}{on_cluster} DEFAULT ROLE {ANALYST_ROLE}")
        return AnalystAccess(ANALYST_USER, ANALYST_ROLE, database, created=True)
    roles = {str(r) for (r,) in client.query("SELECT name FROM system.roles").result_rows}
    users = {str(u) for (u,) in client.query("SELECT name FROM system.users").result_rows}
    if ANALYST_ROLE not in roles or ANALYST_USER not in users:
        raise AccessControlUnavailable(
            "this ClickHouse has no writable access storage and no configured "
            f"{ANALYST_ROLE} role / {ANALYST_USER} user: add a <local_directory> user "
            "directory and access_management for the admin user, or declare them in "
            "the users configuration (see deploy/local/clickhouse_server.py)")
    return AnalystAccess(ANALYST_USER, ANALYST_ROLE, database, created=False)
