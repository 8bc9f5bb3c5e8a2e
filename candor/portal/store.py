"""Invites and sessions of the portal, in one SQLite file under ``$CANDOR_HOME/portal``.

An invite is a one-time token: only its SHA-256 is stored, with the subject and
an expiry. :meth:`PortalStore.redeem` consumes it atomically (one ``UPDATE ...
WHERE used_at IS NULL``), so a link works once even when two browsers race.
A session is a random id (stored hashed as well) with its own CSRF token and
expiry. The file is shared by ``candor portal invite`` (which writes invites)
and ``candor portal serve`` (which redeems them).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["InvalidInvite", "Invite", "PortalStore", "Session", "hash_token"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invites (
    token_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


class InvalidInvite(LookupError):
    """The token is unknown, already used or expired (the portal says only that)."""


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256. Pure."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Invite:
    """A freshly issued invite: ``token`` is shown once and never stored."""

    token: str
    subject: str
    expires_at: float


@dataclass(frozen=True)
class Session:
    """A signed-in person: ``subject`` is the only identity the portal serves."""

    subject: str
    csrf: str
    expires_at: float


class PortalStore:
    """Invites and sessions in SQLite at ``path`` (created with its directory).

    Thread-safe (one connection behind a lock); every method blocks on the
    file briefly. ``now`` is always an argument, so tests control time.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        path.chmod(0o600)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def issue_invite(self, subject: str, ttl_s: float, now: float) -> Invite:
        """Create a one-time invite for ``subject`` valid ``ttl_s`` seconds.

        Raises ValueError for an empty or whitespace-padded subject."""
        if not subject or subject != subject.strip():
            raise ValueError(f"invalid subject id {subject!r}")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute(
                "INSERT INTO invites (token_hash, subject, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (hash_token(token), subject, now, now + ttl_s),
            )
        return Invite(token, subject, now + ttl_s)

    def redeem(self, token: str, now: float) -> str:
        """Consume ``token``; return its subject. Raises :class:`InvalidInvite`
        when it is unknown, used or expired (nothing is changed then)."""
        digest = hash_token(token)
        with self._lock:
            cur = self._db.execute(
                "UPDATE invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL "
                "AND expires_at > ?",
                (now, digest, now),
            )
            if cur.rowcount != 1:
                raise InvalidInvite("this link is not valid (unknown, used or expired)")
            row = self._db.execute(
                "SELECT subject FROM invites WHERE token_hash = ?", (digest,)
            ).fetchone()
        return str(row[0])

    def open_session(self, subject: str, ttl_s: float, now: float) -> tuple[str, Session]:
        """Start a session; return ``(session id for the cookie, session)``."""
        sid = secrets.token_urlsafe(32)
        session = Session(subject, secrets.token_urlsafe(32), now + ttl_s)
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (session_hash, subject, csrf, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (hash_token(sid), subject, session.csrf, now, session.expires_at),
            )
        return sid, session

    def session(self, sid: str, now: float) -> Session | None:
        """The live session of cookie value ``sid``, or None (unknown or expired)."""
        with self._lock:
            row = self._db.execute(
                "SELECT subject, csrf, expires_at FROM sessions WHERE session_hash = ? "
                "AND expires_at > ?",
                (hash_token(sid), now),
            ).fetchone()
        return None if row is None else Session(str(row[0]), str(row[1]), float(row[2]))

    def end_session(self, sid: str) -> None:
        """Forget one session (sign-out)."""
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE session_hash = ?", (hash_token(sid),))

    def end_subject(self, subject: str) -> int:
        """End every session of ``subject`` and void its unused invites (after
        erasure); return how many sessions ended."""
        with self._lock:
            n = self._db.execute("DELETE FROM sessions WHERE subject = ?", (subject,)).rowcount
            self._db.execute(
                "DELETE FROM invites WHERE subject = ? AND used_at IS NULL", (subject,)
            )
        return int(n)
