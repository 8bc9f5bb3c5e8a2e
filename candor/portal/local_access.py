"""The portal's least-privilege ClickHouse login on the local stack.

The local stack's ClickHouse (the chdb engine, `deploy/local/clickhouse.sh`)
reads users only from its configuration, so the portal's role and login
(:mod:`candor.portal.access`) are declared there, as the analyst's are
(:mod:`backends.clickhouse.analyst_access`):

- the password is generated once, random, and kept in
  ``$CANDOR_HOME/privacy/portal.password`` (mode 0600), unless
  ``settings.portal.clickhouse_password`` sets one; it is never a constant;
- ``clickhouse.sh start`` runs ``python -m candor.portal.local_access`` before
  the engine starts, which writes ``<clickhouse dir>/config.d/candor_portal.xml``
  (0600): the role ``candor_portal`` with the grants of
  :func:`candor.portal.access.grants` on the configured database, and the login
  ``candor_portal_user`` holding it, by the password's SHA-256 only;
- the portal the demo / `candor stack` leaves running
  (:func:`candor.stack.start_portal`) logs in as that user, reading the
  password from the file (``candor portal serve --clickhouse-password-file``),
  never from its command line.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from backends.clickhouse.analyst_access import _write_private
from candor.portal.access import PORTAL_ROLE, PORTAL_USER, grants
from candor.settings import Settings, load_settings

__all__ = [
    "FRAGMENT_NAME",
    "password_file",
    "portal_config_fragment",
    "portal_login",
    "resolve_portal_password",
    "write_portal_fragment",
]

FRAGMENT_NAME = "candor_portal.xml"


def password_file(settings: Settings) -> Path:
    """Where the local stack keeps the portal login's password (0600)."""
    return settings.home / "privacy" / "portal.password"


def resolve_portal_password(settings: Settings) -> str:
    """The portal login's password: ``settings.portal.clickhouse_password`` when
    set, else the one kept in :func:`password_file`, else a new random one
    written there (0600, atomic). Raises OSError when the file cannot be
    read or written."""
    configured = settings.portal.clickhouse_password.get_secret_value()
    if configured:
        return configured
    path = password_file(settings)
    if path.exists():
        stored = path.read_text().strip()
        if stored:
            return stored
    password = secrets.token_urlsafe(24)
    _write_private(path, password + "\n")
    return password


def portal_config_fragment(database: str, password: str) -> str:
    """The ``config.d`` XML declaring the portal role (grants on ``database``)
    and its login, for a server that reads users only from its configuration.
    The password appears as its SHA-256 only; the login may connect from
    loopback only (the local stack). Pure."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    queries = "".join(f"<query>GRANT {escape(g)}</query>" for g in grants(database))
    return f"""<clickhouse>
  <!-- Written by `python -m candor.portal.local_access` (deploy/local/clickhouse.sh);
       read by ClickHouse when it starts. -->
  <users>
    <{PORTAL_USER} replace="replace">
      <password_sha256_hex>{digest}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants><query>GRANT {PORTAL_ROLE}</query></grants>
    </{PORTAL_USER}>
  </users>
  <roles>
    <{PORTAL_ROLE} replace="replace">
      <grants>{queries}</grants>
    </{PORTAL_ROLE}>
  </roles>
</clickhouse>
"""


def write_portal_fragment(settings: Settings, config_dir: Path) -> Path:
    """Write :func:`portal_config_fragment` for ``settings.clickhouse.database``
    and :func:`resolve_portal_password` to ``config_dir`` (0600, atomic); return
    its path. Raises OSError."""
    path = config_dir / FRAGMENT_NAME
    password = resolve_portal_password(settings)
    _write_private(path, portal_config_fragment(settings.clickhouse.database, password))
    return path


def portal_login(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The extra ``candor portal serve`` arguments and environment that make a
    child portal read as the portal's own user: the user's name in
    ``CANDOR_PORTAL__CLICKHOUSE_USER``; the password from
    ``settings.portal.clickhouse_password`` through the environment when set,
    else by ``--clickhouse-password-file`` (:func:`resolve_portal_password`
    creates the file when missing). Never puts a password on a command line."""
    env = {"CANDOR_PORTAL__CLICKHOUSE_USER": settings.portal.clickhouse_user or PORTAL_USER}
    configured = settings.portal.clickhouse_password.get_secret_value()
    if configured:
        env["CANDOR_PORTAL__CLICKHOUSE_PASSWORD"] = configured
        return [], env
    resolve_portal_password(settings)
    return ["--clickhouse-password-file", str(password_file(settings))], env


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m candor.portal.local_access --config-dir DIR``: write the fragment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config-dir", type=Path, required=True, help="the ClickHouse server's config.d directory"
    )
    args = parser.parse_args(argv)
    path = write_portal_fragment(load_settings(), args.config_dir)
    print(f"{PORTAL_USER}: declared in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
