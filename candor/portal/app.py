"""The portal's aiohttp app: sign-in, pages, consent changes, download, erasure.

Identity comes from the session cookie alone: no handler takes a subject from
the request, and ids in URLs (``/events/{id}``, ``/sessions/{id}``,
``/exports/{id}``) are looked up together with the session's subject, so
another person's id answers 404. Around every handler:

- security headers (a CSP allowing only this origin, no framing, no referrer,
  no caching);
- the session check (401 without a live session, outside ``/signin``,
  ``/static`` and ``/healthz``) and, for every POST, the CSRF check (403);
- an ``audit_log`` row per view and action (``portal_view``,
  ``portal_signin``, ``portal_consent``, ``portal_download``,
  ``portal_erase``), actor ``portal:<subject>``.

Sign-in (``POST /signin``) and downloads are rate limited (429 + Retry-After).
ClickHouse calls run in worker threads (one client per thread); consent
changes and erasure call :mod:`backends.kafka.consent_registry` and
:mod:`backends.erasure` with the admin settings.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Middleware
from clickhouse_connect.driver.client import Client

from backends.clickhouse.key_store import write_audit
from candor.portal import data, pages
from candor.portal.download import build_zip
from candor.portal.ratelimit import RateLimit, RateLimited
from candor.portal.store import InvalidInvite, PortalStore, Session
from candor.settings import Settings, replace
from privacy.consent import ConsentPolicy
from privacy.scope import Scope, sorted_names

__all__ = ["COOKIE", "Portal", "build_app", "reader_settings"]

log = logging.getLogger(__name__)

COOKIE = "candor_portal"
STATIC = Path(__file__).resolve().parent / "static"
PUBLIC = ("/signin", "/static/", "/healthz")
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SESSION_KEY = web.RequestKey("session", Session)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reader_settings(settings: Settings) -> Settings:
    """The settings the portal reads ClickHouse with: the portal's own user
    when ``settings.portal.clickhouse_user`` is set, else the admin's. Pure."""
    if settings.portal.clickhouse_user is None:
        return settings
    return replace(
        settings,
        clickhouse={
            "user": settings.portal.clickhouse_user,
            "password": settings.portal.clickhouse_password,
        },
    )


class Portal:
    """The portal's state: settings, invite/session store, rate limits, clients."""

    def __init__(
        self, settings: Settings, store: PortalStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.reader = reader_settings(settings)
        self.store = store
        self.clock = clock
        ps = settings.portal
        self.signin_limit = RateLimit(ps.signin_per_minute, 60.0)
        self.download_limit = RateLimit(ps.downloads_per_hour, 3600.0)
        self._local = threading.local()
        self.secure = ps.secure_cookies or ps.public_url.startswith("https://")
        # the last policy this process published per subject: the consent ledger
        # (filled by a sink) lags the registry by a moment
        self.published: dict[str, ConsentPolicy] = {}

    def client(self) -> Client:
        """This thread's ClickHouse client as the portal's reader (opened once)."""
        found: Client | None = getattr(self._local, "client", None)
        if found is None:
            from backends.clickhouse.connection import connect

            found = connect(self.reader)
            self._local.client = found
        return found

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking call in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    def audit(self, subject: str, action: str, detail: dict[str, Any]) -> None:
        """One ``audit_log`` row (blocks on ClickHouse)."""
        write_audit(self.client(), f"portal:{subject}", action, subject, detail)

    def current_scopes(self, subject: str) -> tuple[list[str], str | None]:
        """``(scopes now, org)``: the ledger's latest version, or the version this
        portal published last when the ledger has not caught up with it yet (blocks)."""
        rows = (
            self.client()
            .query(
                "SELECT argMax(scopes, version), argMax(org_id, version), max(version) "
                "FROM consent_ledger WHERE subject_id = {s:String} HAVING count() > 0",
                parameters={"s": subject},
            )
            .result_rows
        )
        mine = self.published.get(subject)
        if mine is not None and (not rows or mine.version > int(rows[0][2])):
            return sorted_names(mine.scopes), mine.org_id
        if not rows:
            return [], None
        return [str(x) for x in rows[0][0]], str(rows[0][1])

    def capture_hours(self, org: str | None) -> dict[str, Any] | None:
        """The org's capture hours from the settings, or None (any hour)."""
        for entry in self.settings.privacy.capture_hours:
            if entry.get("org_id") == org:
                return entry
        return None


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # the person sees a page, the log gets the traceback
        log.exception("portal: %s %s failed", request.method, request.path)
        response = _html(
            pages.message_page(
                "Something went wrong", "The portal could not answer. Try again in a minute."
            ),
            500,
        )
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _session_middleware(portal: Portal) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC):
            return await handler(request)
        sid = request.cookies.get(COOKIE, "")
        session = portal.store.session(sid, portal.clock()) if sid else None
        if session is None:
            return _html(
                pages.message_page(
                    "Please sign in", "Open the personal link you received to sign in."
                ),
                401,
            )
        if request.method == "POST":
            form = await request.post()
            if form.get("csrf") != session.csrf:
                await portal.run(
                    portal.audit,
                    session.subject,
                    "portal_refused",
                    {"path": request.path, "why": "csrf"},
                )
                return _html(
                    pages.message_page(
                        "Refused", "This form has expired. Go back, reload and try again."
                    ),
                    403,
                )
        request[SESSION_KEY] = session
        response = await handler(request)
        if request.method == "GET":
            await portal.run(
                portal.audit,
                session.subject,
                "portal_view",
                {"path": request.path, "status": response.status},
            )
        return response

    return check


def _session(request: web.Request) -> Session:
    return request[SESSION_KEY]


def _notice(query: Mapping[str, str]) -> str:
    """The line shown after a consent change (from the redirect's query). Pure."""
    scope, done, version = query.get("scope"), query.get("done"), query.get("v", "")
    if scope not in {x.value for x in Scope} or done not in ("grant", "revoke"):
        return ""
    verb = "granted" if done == "grant" else "revoked"
    return (
        f"{scope} {verb} (consent version {version[:12]}). It applies to everything "
        "captured from now on."
    )


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def build_app(portal: Portal) -> web.Application:
    """The aiohttp application of ``portal`` (routes in the module docstring)."""
    app = web.Application(
        middlewares=[_headers, _session_middleware(portal)], client_max_size=64 * 1024
    )
    r = app.router

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def signin_form(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        body = (
            f'<form method="post" action="/signin">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            "<p>This link signs you in once. It is yours alone.</p>"
            '<p><button type="submit" id="signin">Sign in</button></p></form>'
        )
        return _html(pages.layout("Sign in to see your data", body))

    async def signin(request: web.Request) -> web.StreamResponse:
        remote = request.remote or "?"
        now = portal.clock()
        try:
            portal.signin_limit.take(remote, now)
        except RateLimited as err:
            return web.Response(
                status=429,
                text="too many sign-in attempts",
                headers={"Retry-After": str(int(err.retry_after) + 1)},
            )
        form = await request.post()
        try:
            subject = portal.store.redeem(str(form.get("token", "")), now)
        except InvalidInvite:
            await portal.run(portal.audit, "", "portal_signin_refused", {"remote": remote})
            return _html(
                pages.message_page(
                    "This link does not work",
                    "The link is unknown, was already used or has expired. Ask for a new one.",
                ),
                403,
            )
        sid, _ = portal.store.open_session(subject, portal.settings.portal.session_ttl_s, now)
        await portal.run(portal.audit, subject, "portal_signin", {"remote": remote})
        response = _redirect("/")
        secure = portal.secure or request.secure  # Secure whenever TLS is in front
        response.set_cookie(
            COOKIE,
            sid,
            httponly=True,
            samesite="Strict",
            secure=secure,
            path="/",
            max_age=int(portal.settings.portal.session_ttl_s),
        )
        return response

    async def signout(request: web.Request) -> web.StreamResponse:
        portal.store.end_session(request.cookies.get(COOKIE, ""))
        await portal.run(portal.audit, _session(request).subject, "portal_signout", {})
        response = _redirect("/signin")
        response.del_cookie(COOKIE, path="/")
        return response

    async def home(request: web.Request) -> web.Response:
        subject = _session(request).subject

        def load() -> str:
            scopes, org = portal.current_scopes(subject)
            client = portal.client()
            return pages.home_page(
                subject,
                scopes,
                portal.capture_hours(org),
                data.overview(client, subject),
                data.receipts(client, subject),
                data.sessions(client, subject, 20),
            )

        return _html(await portal.run(load))

    async def consent(request: web.Request) -> web.Response:
        session = _session(request)

        def load(notice: str = "") -> str:
            scopes, _ = portal.current_scopes(session.subject)
            return pages.consent_page(
                session.subject,
                scopes,
                data.consent_history(portal.client(), session.subject),
                session.csrf,
                notice,
            )

        if request.method == "GET":
            return _html(await portal.run(load, _notice(request.query)))
        form = await request.post()
        scope, action = str(form.get("scope", "")), str(form.get("action", ""))
        if action not in ("grant", "revoke") or scope not in {x.value for x in Scope}:
            return _html(pages.message_page("Refused", "Unknown scope or action."), 400)
        try:
            version = await portal.run(_change_consent, portal, session.subject, scope, action)
        except Exception as err:  # a refused change is shown, never a traceback
            log.warning("portal consent change refused for %s: %s", session.subject, err)
            return _html(await portal.run(load, f"Not changed: {err}"), 409)
        await portal.run(
            portal.audit,
            session.subject,
            "portal_consent",
            {"scope": scope, "action": action, "version": version},
        )
        # Post/Redirect/Get: reloading the page never sends the change again
        return _redirect(f"/consent?{urlencode({'scope': scope, 'done': action, 'v': version})}")

    async def events(request: web.Request) -> web.Response:
        subject = _session(request).subject
        rows = await portal.run(data.recent_events, portal.client(), subject)
        return _html(pages.events_page(subject, rows))

    def record_view(title: str, find: Callable[[Client, str, str], Any]) -> Handler:
        async def view(request: web.Request) -> web.StreamResponse:
            subject = _session(request).subject
            found = await portal.run(
                lambda: find(portal.client(), subject, request.match_info["id"])
            )
            if found is None:
                return _html(pages.message_page("Not found", "Nothing of yours has this id."), 404)
            record = found if isinstance(found, dict) else vars(found)
            return _html(pages.record_page(subject, title, record))

        return view

    async def download_page(request: web.Request) -> web.Response:
        return _html(pages.download_page(_session(request).subject))

    async def download_zip(request: web.Request) -> web.StreamResponse:
        subject = _session(request).subject
        try:
            portal.download_limit.take(subject, portal.clock())
        except RateLimited as err:
            return web.Response(
                status=429,
                text="too many downloads, try again later",
                headers={"Retry-After": str(int(err.retry_after) + 1)},
            )

        def build() -> Path:
            scopes, org = portal.current_scopes(subject)
            extra = {"consent_now": scopes, "capture_hours": portal.capture_hours(org)}
            return build_zip(
                portal.client(), subject, Path(tempfile.gettempdir()), datetime.now(UTC), extra
            )

        path: Path = await portal.run(build)
        try:
            size = path.stat().st_size
            await portal.run(portal.audit, subject, "portal_download", {"bytes": size})
            response = web.StreamResponse(
                headers={
                    "Content-Type": "application/zip",
                    "Content-Disposition": 'attachment; filename="candor-my-data.zip"',
                }
            )
            response.content_length = size
            await response.prepare(request)
            with path.open("rb") as fh:
                while chunk := fh.read(64 * 1024):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            path.unlink(missing_ok=True)

    async def erase(request: web.Request) -> web.StreamResponse:
        session = _session(request)
        if request.method == "GET":
            return _html(pages.erase_page(session.subject, session.csrf))
        form = await request.post()
        if form.get("confirm") != "yes":
            return _html(pages.erase_page(session.subject, session.csrf), 400)
        receipt = await portal.run(_erase, portal, session.subject)
        portal.store.end_subject(session.subject)
        await portal.run(
            portal.audit, session.subject, "portal_erase", {"erasure_id": receipt.get("erasure_id")}
        )
        response = _html(pages.receipt_page(receipt))
        response.del_cookie(COOKIE, path="/")
        return response

    r.add_get("/healthz", healthz)
    r.add_get("/signin", signin_form)
    r.add_post("/signin", signin)
    r.add_post("/signout", signout)
    r.add_get("/", home)
    r.add_get("/consent", consent)
    r.add_post("/consent", consent)
    r.add_get("/events", events)
    r.add_get("/events/{id}", record_view("One event", data.event_detail))
    r.add_get("/sessions/{id}", record_view("One work session", data.session_detail))
    r.add_get("/exports/{id}", record_view("One export that included you", data.export_detail))
    r.add_get("/download", download_page)
    r.add_get("/download/zip", download_zip)
    r.add_get("/erase", erase)
    r.add_post("/erase", erase)
    r.add_static("/static/", STATIC)
    return app


def _change_consent(portal: Portal, subject: str, scope: str, action: str) -> int:
    """Publish the person's change to ``consent.policies``; return the new version.

    A grant first makes sure the subject has a data key (as ``candor consent
    grant`` does), so content of a newly granted scope is encrypted, not cleared."""
    from backends.kafka.consent_registry import grant_scopes, revoke_scopes

    by = f"portal:{subject}"
    reason = "changed by the person in the portal"
    if action == "revoke":
        policy = revoke_scopes(portal.settings, subject, [scope], by, reason)
        portal.published[subject] = policy
        return policy.version
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import ensure_subject_key
    from candor.settings import master_key_bytes

    _, org = portal.current_scopes(subject)
    ensure_subject_key(connect(portal.settings), master_key_bytes(portal.settings), subject, by)
    policy = grant_scopes(portal.settings, subject, org, [scope], by, reason)
    portal.published[subject] = policy
    return policy.version


def _erase(portal: Portal, subject: str) -> dict[str, Any]:
    """Run the crypto-shredding erasure; return the receipt (the existing one
    when the subject was already erased)."""
    from backends.erasure import AlreadyErased, erase

    try:
        return erase(
            portal.settings,
            subject,
            actor=f"portal:{subject}",
            settle_s=portal.settings.portal.erase_settle_s,
        ).to_dict()
    except AlreadyErased as err:
        return err.receipt
