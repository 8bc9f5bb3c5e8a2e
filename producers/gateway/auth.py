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

A running gateway re-reads the file when it changes (`candor gateway token
add|revoke` take effect within a request). A malformed file stops a gateway
from starting (`TokenFileError`); a malformed rewrite of a running gateway's
file keeps the last good set, logs an ERROR and counts
``candor_gateway_token_reload_failures_total``, until the file is fixed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.gateway.errors import Unauthorized

TOKEN_BYTES = 32

_log = logging.getLogger(__name__)


class TokenFileError(ValueError):
    """The token file is not valid JSON or holds a malformed entry."""


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
            isinstance(device, str)
            and device
            and isinstance(subject, str)
            and subject
            and isinstance(org, str)
            and org
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


def read_token_file(path: Path) -> dict[str, DeviceIdentity]:
    """The identities in ``path``. Raises `TokenFileError` for bad JSON or a
    malformed entry, FileNotFoundError when absent."""
    try:
        return parse_tokens(json.loads(path.read_text()))
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise TokenFileError(f"token file {path}: {err}") from None


class TokenFile:
    """The token file on disk; re-read when its mtime changes (so `token add`
    and `token revoke` take effect on a running gateway). Blocks on small file
    reads only. ``on_reload_error(message)`` is called once per bad rewrite."""

    def __init__(self, path: Path, on_reload_error: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.on_reload_error = on_reload_error
        self._mtime: int | None = None
        self._loaded = False
        self._tokens: dict[str, DeviceIdentity] = {}

    def tokens(self) -> dict[str, DeviceIdentity]:
        """The current identities; an absent file means no tokens.

        Raises `TokenFileError` for a malformed file on the first load (a
        gateway must not start on a file it cannot read). Later, a malformed
        rewrite keeps the last good tokens (a half-edited file must not lock
        every device out, nor let a revoked one in again), logs an ERROR and
        calls ``on_reload_error``."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._tokens, self._loaded = None, {}, True
            return self._tokens
        if mtime != self._mtime:
            try:
                self._tokens = read_token_file(self.path)
            except TokenFileError as err:
                if not self._loaded:
                    raise
                _log.error("%s; keeping the last good set of %d tokens", err, len(self._tokens))
                if self.on_reload_error is not None:
                    self.on_reload_error(str(err))
            self._mtime = mtime
            self._loaded = True
        return self._tokens

    def _stored(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        return {digest: known.to_json() for digest, known in read_token_file(self.path).items()}

    def _write(self, entries: Mapping[str, Any]) -> None:
        """Replace the file atomically: a fresh 0600 temp file (never through a
        symlink), fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, json.dumps(dict(entries), indent=2, sort_keys=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def revoke(self, *, device_id: str | None = None, token_hash: str | None = None) -> int:
        """Remove the tokens of ``device_id`` and/or whose stored hash starts with
        ``token_hash`` (at least 8 hex digits); return how many. A running
        gateway refuses them from its next request on. Raises ValueError when
        neither is given or the prefix is too short, `TokenFileError` for a
        malformed file (then nothing changes)."""
        if device_id is None and token_hash is None:
            raise ValueError("name a device or a token hash to revoke")
        if token_hash is not None and len(token_hash) < 8:
            raise ValueError("a token hash prefix needs at least 8 hex digits")
        current = self._stored()
        keep = {
            digest: entry
            for digest, entry in current.items()
            if not (
                (device_id is not None and entry["device_id"] == device_id)
                or (token_hash is not None and digest.startswith(token_hash.lower()))
            )
        }
        if len(keep) != len(current):
            self._write(keep)
        return len(current) - len(keep)

    def add(self, identity: DeviceIdentity) -> str:
        """Create a token for `identity`, store its hash (atomic rename, 0600)
        and return the token: the only time it is ever visible."""
        token = new_token()
        current = self._stored()
        current[hash_token(token)] = identity.to_json()
        self._write(current)
        return token
