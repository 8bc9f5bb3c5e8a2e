"""The portal's own ClickHouse user: read the person's tables, append to the audit log.

The role ``candor_portal`` gets ``SELECT`` on the tables the portal shows
(:data:`READ_TABLES`) and ``INSERT`` on ``audit_log``, nothing else: no key
store, no dead letters, no DDL, no mutation. The portal reads every page
through a client logged in as ``candor_portal_user`` when
``settings.portal.clickhouse_user`` names it. Erasure and consent changes are
not reads: they go through the existing admin flows (``backends.erasure``,
``backends.kafka.consent_registry``) with the admin settings, as ``candor erase`` does.

As with the analyst role (:mod:`backends.clickhouse.analyst_access`), a server without a
writable access storage (the chdb engine of the local stack) must declare the
role and user in its configuration; :func:`ensure_portal_access` then only
verifies them.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from backends.clickhouse.analyst_access import AccessControlUnavailable
from candor.settings import Settings

__all__ = ["PORTAL_ROLE", "PORTAL_USER", "READ_TABLES", "ensure_portal_access", "grants"]

PORTAL_ROLE = "candor_portal"
PORTAL_USER = "candor_portal_user"
READ_TABLES = (
    "events",
    "sessions",
    "activity_minutes",
    "activity_minutes_by_device",
    "actions",
    "consent_ledger",
    "exports",
    "audit_log",
)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def grants(database: str) -> list[str]:
    """The role's grants on ``database``, as GRANT statements' bodies. Pure."""
    out = [f"SELECT ON {database}.{t}" for t in READ_TABLES]
    out.append(f"INSERT ON {database}.audit_log")
    return out


def ensure_portal_access(settings: Settings, password: str, client: Client | None = None) -> bool:
    """Create (or verify) the portal's role and user; return True when created.

    With a writable access storage: ``CREATE ROLE/USER IF NOT EXISTS`` and the
    grants of :func:`grants` (idempotent). Without one: verify that the role
    and user are configured, else raise
    :class:`~backends.clickhouse.analyst_access.AccessControlUnavailable`. Blocks on ClickHouse.
    """
    from backends.clickhouse.connection import connect

    client = client or connect(settings, database="")
    cluster = settings.clickhouse.cluster
    on = f" ON CLUSTER {cluster}" if cluster else ""
    rows = client.query("SELECT type FROM system.user_directories").result_rows
    if any(str(t) in ("local_directory", "replicated", "memory") for (t,) in rows):
        client.command(f"CREATE ROLE IF NOT EXISTS {PORTAL_ROLE}{on}")
        for grant in grants(settings.clickhouse.database):
            client.command(f"GRANT{on} {grant} TO {PORTAL_ROLE}")
        client.command(
            f"CREATE USER IF NOT EXISTS {PORTAL_USER}{on} IDENTIFIED WITH "
            f"sha256_password BY {_quote(password)}"
        )
        client.command(f"GRANT{on} {PORTAL_ROLE} TO {PORTAL_USER}")
        client.command(f"ALTER USER {PORTAL_USER}{on} DEFAULT ROLE {PORTAL_ROLE}")
        return True
    roles = {str(r) for (r,) in client.query("SELECT name FROM system.roles").result_rows}
    users = {str(u) for (u,) in client.query("SELECT name FROM system.users").result_rows}
    if PORTAL_ROLE not in roles or PORTAL_USER not in users:
        raise AccessControlUnavailable(
            f"this ClickHouse has no writable access storage and no configured {PORTAL_ROLE} "
            f"role / {PORTAL_USER} user: declare them in the users configuration with "
            + "; ".join(f"GRANT {g}" for g in grants(settings.clickhouse.database))
        )
    return False
