"""Analyst access: the role ``candor_analyst`` may read the analyst views only.

Migrations 0004 and 0006 create the views in the database ``analyst_<db>``;
this module gives the role ``candor_analyst`` ``SELECT`` on that database and
nothing else, and makes the login ``candor_analyst_user`` hold the role, with

- a password that is never a constant outside the local stack: taken from a
  file (``--password-file``), from ``settings.privacy.analyst_password``, or
  generated and written to ``$CANDOR_HOME/privacy/analyst.password`` (0600);
  only its hash is given to ClickHouse, and ``rotate`` replaces it;
- the read-only settings profile ``candor_analyst_profile`` (``readonly = 2``:
  reads, and only the settings the profile's constraints allow; execution
  time, result rows and memory capped from settings);
- the hourly quota ``candor_analyst_quota`` (queries, rows read);
- a host restriction (``settings.privacy.analyst_networks``).

Two ways to apply it. A server with a writable access storage gets SQL
(:func:`access_statements`; ``ALTER USER ... IDENTIFIED`` every time, so a new
password always takes effect, unlike ``CREATE USER IF NOT EXISTS``). A server
that reads users only from its configuration - the local stack's ClickHouse from
the chdb-core engine - gets a configuration fragment
(:func:`users_config_fragment`) written to its ``config.d`` directory, which it
reads when it (re)starts; :func:`ensure_analyst_access` says so.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape

from clickhouse_connect.driver.client import Client

from backends.clickhouse.settings import ClickHouseSettings
from privacy.settings import PrivacySettings

__all__ = [
    "ANALYST_PROFILE",
    "ANALYST_QUOTA",
    "ANALYST_ROLE",
    "ANALYST_USER",
    "AccessControlUnavailable",
    "AnalystAccess",
    "AnalystPassword",
    "EmptyPasswordFile",
    "access_statements",
    "analyst_database",
    "default_config_dir",
    "ensure_analyst_access",
    "resolve_password",
    "users_config_fragment",
    "write_config_fragment",
]

ANALYST_ROLE = "candor_analyst"
ANALYST_USER = "candor_analyst_user"
ANALYST_PROFILE = "candor_analyst_profile"
ANALYST_QUOTA = "candor_analyst_quota"
FRAGMENT_NAME = "candor_analyst.xml"
# The local stack's documented default (deploy/local/clickhouse_server.py); used
# only when `is_local_stack` and nothing else was configured.
LOCAL_ANALYST_PASSWORD = "candor-analyst-local"


class AccessControlUnavailable(RuntimeError):
    """The server can neither create the role and user by SQL nor has them
    configured; the message says what to configure."""


class EmptyPasswordFile(ValueError):
    """The password file given is empty."""


@dataclass(frozen=True)
class AnalystPassword:
    """The analyst's password and where it is kept (a file path, or a setting)."""

    password: str
    where: str
    generated: bool


@dataclass(frozen=True)
class AnalystAccess:
    """Where analysts connect and what they read."""

    user: str
    role: str
    database: str
    created: bool  # False: found in the server's configuration
    fragment: Path | None = None  # the configuration fragment written, if any


class AnalystSettings(Protocol):
    """What analyst access reads (`candor.settings.Settings` has it all)."""

    @property
    def home(self) -> Path: ...
    @property
    def clickhouse(self) -> ClickHouseSettings: ...
    @property
    def privacy(self) -> PrivacySettings: ...

    def on_local_stack(self) -> bool:
        """Whether this is the one-machine local stack (`candor.settings.is_local_stack`)."""
        ...


def analyst_database(settings: AnalystSettings) -> str:
    """The database holding the analyst views of ``settings.clickhouse.database``."""
    return f"analyst_{settings.clickhouse.database}"


def default_password_file(settings: AnalystSettings) -> Path:
    """Where a generated analyst password is kept."""
    return settings.home / "privacy" / "analyst.password"


def default_config_dir(settings: AnalystSettings) -> Path:
    """The local stack ClickHouse's ``config.d`` (deploy/local/clickhouse.sh's directory)."""
    return settings.home / "clickhouse" / "config.d"


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file born 0600 (never through a symlink)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def resolve_password(
    settings: AnalystSettings, password_file: Path | None = None, *, rotate: bool = False
) -> AnalystPassword:
    """The password to give the analyst login.

    In order: ``password_file`` (read, stripped); unless ``rotate``,
    ``settings.privacy.analyst_password``, then a password generated earlier
    (:func:`default_password_file`), then - on the local stack only - its
    documented default; otherwise (and always with ``rotate``) a new random
    password written to :func:`default_password_file` with mode 0600.
    Raises :class:`EmptyPasswordFile`, OSError for an unreadable file.
    """
    if password_file is not None:
        text = password_file.read_text().strip()
        if not text:
            raise EmptyPasswordFile(f"{password_file} holds no password")
        return AnalystPassword(text, str(password_file), generated=False)
    stored = default_password_file(settings)
    if not rotate:
        if settings.privacy.analyst_password is not None:
            secret = settings.privacy.analyst_password.get_secret_value()
            if secret:
                return AnalystPassword(secret, "settings privacy.analyst_password", False)
        if stored.exists():
            return AnalystPassword(stored.read_text().strip(), str(stored), generated=False)
        if settings.on_local_stack():
            return AnalystPassword(
                LOCAL_ANALYST_PASSWORD, "the local stack's default (deploy/local)", False
            )
    password = secrets.token_urlsafe(24)
    _write_private(stored, password + "\n")
    return AnalystPassword(password, str(stored), generated=True)


def _quote(text: str) -> str:
    """A ClickHouse string literal (DDL takes no query parameters)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def access_statements(
    settings: AnalystSettings, password: str, salt: str | None = None
) -> list[str]:
    """The SQL giving the analyst role, profile, quota and login, for a server
    with a writable access storage. Pure given ``salt`` (random when None).

    The password travels as a salted SHA-256 only; ``ALTER USER`` sets it on
    every run, so a rotated password replaces the old one."""
    p = settings.privacy
    cluster = settings.clickhouse.cluster
    oc = f" ON CLUSTER {cluster}" if cluster else ""
    salt = salt if salt is not None else secrets.token_hex(16)
    digest = hashlib.sha256((password + salt).encode()).hexdigest()
    hosts = ", ".join(f"IP {_quote(n)}" for n in p.analyst_networks) or "NONE"
    identified = f"IDENTIFIED WITH sha256_hash BY {_quote(digest)} SALT {_quote(salt)} HOST {hosts}"
    return [
        f"CREATE ROLE IF NOT EXISTS {ANALYST_ROLE}{oc}",
        f"GRANT{oc} SELECT ON {analyst_database(settings)}.* TO {ANALYST_ROLE}",
        f"CREATE SETTINGS PROFILE OR REPLACE {ANALYST_PROFILE}{oc} SETTINGS "
        f"readonly = 2 CONST, max_execution_time = {p.analyst_max_execution_s} MAX "
        f"{p.analyst_max_execution_s}, max_result_rows = {p.analyst_max_result_rows} MAX "
        f"{p.analyst_max_result_rows}, max_memory_usage = {p.analyst_max_memory_bytes} MAX "
        f"{p.analyst_max_memory_bytes}",
        f"CREATE QUOTA OR REPLACE {ANALYST_QUOTA}{oc} FOR INTERVAL 1 hour MAX "
        f"queries = {p.analyst_queries_per_hour}, read_rows = {p.analyst_read_rows_per_hour} "
        f"TO {ANALYST_ROLE}",
        f"CREATE USER IF NOT EXISTS {ANALYST_USER}{oc} {identified}",
        f"ALTER USER {ANALYST_USER}{oc} {identified} SETTINGS PROFILE {_quote(ANALYST_PROFILE)}",
        f"GRANT{oc} {ANALYST_ROLE} TO {ANALYST_USER}",
        f"ALTER USER {ANALYST_USER}{oc} DEFAULT ROLE {ANALYST_ROLE}",
    ]


def users_config_fragment(settings: AnalystSettings, password: str) -> str:
    """The ``config.d`` XML declaring the same role, profile, quota and login,
    for a server that reads users only from its configuration. Pure.

    The login's and the role's elements *replace* any earlier declaration of
    them (the local stack's defaults). The password appears as its SHA-256
    only."""
    p = settings.privacy
    digest = hashlib.sha256(password.encode()).hexdigest()
    networks = "".join(f"<ip>{escape(n)}</ip>" for n in p.analyst_networks)
    return f"""<clickhouse>
  <!-- Written by `candor analyst-access`; read by ClickHouse when it starts. -->
  <profiles>
    <{ANALYST_PROFILE} replace="replace">
      <readonly>2</readonly>
      <max_execution_time>{p.analyst_max_execution_s}</max_execution_time>
      <max_result_rows>{p.analyst_max_result_rows}</max_result_rows>
      <max_memory_usage>{p.analyst_max_memory_bytes}</max_memory_usage>
      <constraints>
        <readonly><const/></readonly>
        <max_execution_time><max>{p.analyst_max_execution_s}</max></max_execution_time>
        <max_result_rows><max>{p.analyst_max_result_rows}</max></max_result_rows>
        <max_memory_usage><max>{p.analyst_max_memory_bytes}</max></max_memory_usage>
      </constraints>
    </{ANALYST_PROFILE}>
  </profiles>
  <quotas>
    <{ANALYST_QUOTA} replace="replace">
      <interval>
        <duration>3600</duration>
        <queries>{p.analyst_queries_per_hour}</queries>
        <read_rows>{p.analyst_read_rows_per_hour}</read_rows>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <execution_time>0</execution_time>
      </interval>
    </{ANALYST_QUOTA}>
  </quotas>
  <users>
    <{ANALYST_USER} replace="replace">
      <password_sha256_hex>{digest}</password_sha256_hex>
      <networks>{networks}</networks>
      <profile>{ANALYST_PROFILE}</profile>
      <quota>{ANALYST_QUOTA}</quota>
      <grants><query>GRANT {ANALYST_ROLE}</query></grants>
    </{ANALYST_USER}>
  </users>
  <roles>
    <{ANALYST_ROLE} replace="replace">
      <grants><query>GRANT SELECT ON analyst_*.*</query></grants>
    </{ANALYST_ROLE}>
  </roles>
</clickhouse>
"""


def write_config_fragment(settings: AnalystSettings, password: str, config_dir: Path) -> Path:
    """Write :func:`users_config_fragment` to ``config_dir`` (0600, atomic); return its path."""
    path = config_dir / FRAGMENT_NAME
    _write_private(path, users_config_fragment(settings, password))
    return path


def _writable_storage(client: Client) -> bool:
    rows = client.query("SELECT type FROM system.user_directories").result_rows
    return any(str(t) in ("local_directory", "replicated", "memory") for (t,) in rows)


def ensure_analyst_access(
    settings: AnalystSettings,
    password: str,
    client: Client | None = None,
    *,
    config_dir: Path | None = None,
) -> AnalystAccess:
    """Give the analyst login ``password``, the read-only profile, the quota and
    the host restriction; return where it reads.

    With a writable access storage: runs :func:`access_statements` (idempotent;
    the password is set every time). Without one: writes the configuration
    fragment to ``config_dir`` when given (the server applies it when it
    restarts), then verifies that the server declares the role and the user,
    else raises :class:`AccessControlUnavailable`. Blocks on ClickHouse.
    """
    from backends.clickhouse.connection import connect

    client = client or connect(settings, database="")
    database = analyst_database(settings)
    if _writable_storage(client):
        for statement in access_statements(settings, password):
            client.command(statement)
        return AnalystAccess(ANALYST_USER, ANALYST_ROLE, database, created=True)
    fragment = None
    if config_dir is not None:
        fragment = write_config_fragment(settings, password, config_dir)
    roles = {str(r) for (r,) in client.query("SELECT name FROM system.roles").result_rows}
    users = {str(u) for (u,) in client.query("SELECT name FROM system.users").result_rows}
    if fragment is None and (ANALYST_ROLE not in roles or ANALYST_USER not in users):
        raise AccessControlUnavailable(
            "this ClickHouse has no writable access storage and no configured "
            f"{ANALYST_ROLE} role / {ANALYST_USER} user: add a <local_directory> user "
            "directory and access_management for the admin user, or declare them in "
            "the users configuration (`candor analyst-access --config-dir`)"
        )
    return AnalystAccess(ANALYST_USER, ANALYST_ROLE, database, created=False, fragment=fragment)
