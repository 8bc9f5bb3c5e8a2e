"""`candor portal serve | invite | access`: run the portal, issue a sign-in link,
create or verify the portal's ClickHouse user."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from candor.settings import Settings, replace

__all__ = ["add_commands", "invite_link", "store_path"]

Handler = Callable[[argparse.Namespace, Settings], int]


def store_path(settings: Settings) -> Path:
    """Where the portal keeps invites and sessions (shared by serve and invite)."""
    return settings.home / "portal" / "portal.sqlite3"


def invite_link(settings: Settings, subject: str, ttl_s: float | None = None) -> str:
    """Issue a one-time invite for ``subject``; return the sign-in URL.

    Raises ValueError for an invalid subject id. Writes the store only."""
    from candor.portal.store import PortalStore

    store = PortalStore(store_path(settings))
    try:
        ttl = settings.portal.invite_ttl_s if ttl_s is None else ttl_s
        invite = store.issue_invite(subject, ttl, time.time())
    finally:
        store.close()
    return f"{settings.portal.public_url.rstrip('/')}/signin?token={invite.token}"


def _portal(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "invite":
        if not args.subject:
            raise ValueError("portal invite needs --subject")
        ttl = args.ttl_hours * 3600 if args.ttl_hours else None
        print(invite_link(settings, args.subject, ttl))
        return 0
    if args.action == "access":
        from candor.portal.access import PORTAL_USER, ensure_portal_access

        password = settings.portal.clickhouse_password.get_secret_value()
        if not password:
            raise ValueError("set CANDOR_PORTAL__CLICKHOUSE_PASSWORD for the portal user")
        created = ensure_portal_access(settings, password)
        print(f"{PORTAL_USER}: {'created' if created else 'configured'}")
        return 0
    from aiohttp import web

    from candor.portal.app import Portal, build_app
    from candor.portal.store import PortalStore

    if args.clickhouse_password_file:
        from pydantic import SecretStr

        from candor.portal.access import PORTAL_USER

        secret = args.clickhouse_password_file.read_text().strip()
        if not secret:
            raise ValueError(f"{args.clickhouse_password_file} holds no password")
        user = settings.portal.clickhouse_user or PORTAL_USER
        settings = replace(
            settings, portal={"clickhouse_user": user, "clickhouse_password": SecretStr(secret)}
        )
    if args.host:
        settings = replace(settings, portal={"host": args.host})
    if args.port:
        settings = replace(settings, portal={"port": args.port})
    if settings.portal.clickhouse_user is not None and not _reader_answers(settings):
        return 2
    store = PortalStore(store_path(settings))
    app = build_app(Portal(settings, store))
    print(f"candor portal on http://{settings.portal.host}:{settings.portal.port}/", flush=True)
    web.run_app(
        app, host=settings.portal.host, port=settings.portal.port, print=None, access_log=None
    )
    store.close()
    return 0


def _reader_answers(settings: Settings) -> bool:
    """Whether ClickHouse accepts the portal's own login; says why not on stderr."""
    import sys

    from backends.clickhouse.connection import connect
    from candor.portal.app import reader_settings

    try:
        connect(reader_settings(settings)).query("SELECT currentUser()")
    except Exception as err:  # any refusal: the portal must not fall back to the admin
        print(
            f"candor portal: ClickHouse at {settings.clickhouse.url} refuses the portal's "
            f"user {settings.portal.clickhouse_user!r} ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}). On the local stack it is declared when "
            "ClickHouse starts: restart it (candor stack down; candor stack up).",
            file=sys.stderr,
        )
        return False
    return True


def add_commands(subparsers: Any) -> dict[str, Handler]:
    """Add ``portal`` to ``subparsers``; return its handler."""
    p = subparsers.add_parser(
        "portal",
        help="the person's own portal: serve it, issue a sign-in link, set up its ClickHouse user",
    )
    p.add_argument("action", choices=["serve", "invite", "access"])
    p.add_argument("--subject", help="invite: the person's pseudonymous subject id")
    p.add_argument(
        "--ttl-hours",
        type=float,
        default=0,
        help="invite: hours the link stays valid (default: settings, 7 days)",
    )
    p.add_argument("--host", help="serve: listen address (default: settings, 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="serve: port (default: settings, 8090)")
    p.add_argument(
        "--clickhouse-password-file",
        type=Path,
        help="serve: read ClickHouse as the portal's own user (default "
        "candor_portal_user) with the password in this file",
    )
    return {"portal": _portal}
