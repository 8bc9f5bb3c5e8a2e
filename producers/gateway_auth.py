"""Per-device bearer tokens of the HTTP gateway, stored hashed.

The token file is JSON: ``{"<sha256 hex of the token>": {"device_id": ...,
"subject_id": ..., "org_id": ..., "expires_at": <micros> | null}}``. Only the
hash is ever written; the token itself is printed once by `issue_token` and
then exists only on the device.

Why sha256 and not scrypt: tokens are 256 random bits (`secrets`), so there is
nothing to brute-force; a slow hash would only slow every request. The stored
hash is still compared with `hmac.compare_digest` after the lookup, and the
lookup key is the hash, so response timing says nothing about the token.

Pure apart from `TokenFile` (file I/O); `authenticate` takes `now` in.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.gateway_errors import Unauthorized

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Whom a token speaks for: the only device/subject/org it may publish as."""

    device_id: str
    subject_id: str
    org_id: str
    expires_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The token file entry of this identity."""
        return {
            "device_id": self.device_id,
            "subject_id": self.subject_id,
            "org_id": self.org_id,
            "expires_at": self.expires_at,
        }


def hash_token(token: str) -> str:
    """The sha256 hex digest under which `token` is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh random bearer token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def parse_tokens(raw: Any) -> dict[str, DeviceIdentity]:
    """The identities of a decoded token file. Raises ValueError when an entry
    is malformed (the gateway refuses to start rather than guess)."""
    if not isinstance(raw, dict):
        raise ValueError("token file must hold a JSON object")
    tokens: dict[str, DeviceIdentity] = {}
    for digest, entry in raw.items():
        if not (isinstance(digest, str) and len(digest) == 64 and isinstance(entry, dict)):
            raise ValueError(f"bad token entry {digest!r:.20}")
        device, subject, org = (entry.get(n) for n in ("device_id", "subject_id", "org_id"))
        expires = entry.get("expires_at")
        if not (
            isinstance(device, str) and device
            and isinstance(subject, str) and subject
            and isinstance(org, str) and org
            and (expires is None or (isinstance(expires, int) and not isinstance(expires, bool)))
        ):
            raise ValueError(f"bad token entry {digest[:8]}…: {entry!r:.200}")
        tokens[digest.lower()] = DeviceIdentity(device, subject, org, expires_at=expires)
    return tokens


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.
    Raises `Unauthorized` ("missing_token") when absent or of another scheme."""
    if not header:
        raise Unauthorized("missing_token", "no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing_token", "expected 'Authorization: Bearer <token>'")
    return token


def authenticate(
    tokens: Mapping[str, DeviceIdentity], token: str, now_micros: int
) -> DeviceIdentity:
    """The identity of `token`. Raises `Unauthorized` with reason "invalid_token"
    (unknown) or "expired_token" (`expires_at` <= `now_micros`)."""
    digest = hash_token(token)
    identity = tokens.get(digest)
    # The lookup already matched; compare_digest keeps a constant-time check in
    # place should the store ever become a prefix or database lookup.
    if identity is None or not hmac.compare_digest(digest, hash_token(token)):
        raise Unauthorized("invalid_token", "unknown token")
    if identity.expires_at is not None and identity.expires_at <= now_micros:
        raise Unauthorized("expired_token", "token expired")
    return identity


class TokenFile:
    """The token file on disk; re-read when its mtime changes (so `token add`
    takes effect on a running gateway). Blocks on small file reads only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: int | None = None
        self._tokens: dict[str, DeviceIdentity] = {}

    def tokens(self) -> dict[str, DeviceIdentity]:
        """The current identities; an absent file means no tokens. Raises
        ValueError for a malformed file on first load; later, a malformed
        rewrite keeps the previous tokens (a half-edited file must not lock
        every device out)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._tokens = None, {}
            return self._tokens
        if mtime != self._mtime:
            try:
                self._tokens = parse_tokens(json.loads(self.path.read_text()))
            except ValueError:
                if self._mtime is None:
                    raise
            self._mtime = mtime
        return self._tokens

    def add(self, identity: DeviceIdentity) -> str:
        """Create a token for `identity`, store its hash (atomic rename, 0600)
        and return the token: the only time it is ever visible."""
        token = new_token()
        current: dict[str, Any] = {}
        if self.path.exists():
            stored = parse_tokens(json.loads(self.path.read_text()))
            current = {digest: known.to_json() for digest, known in stored.items()}
        current[hash_token(token)] = identity.to_json()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(current, indent=2, sort_keys=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        return token
