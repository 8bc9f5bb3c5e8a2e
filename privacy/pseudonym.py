"""Pseudonyms: stable, keyed, per-org identifiers for people.

``pseudonymize(identity, org_key, key_version)`` is HMAC-SHA256 over a
domain-separated message, rendered as ``"s<version>_" + 26 lowercase base32 chars``
(130 bits of the MAC). Guarantees:

- Stable: the same identity, key and version give the same pseudonym, on any host.
- Keyed: without the org key nobody can recompute or test a guess (unlike a plain
  hash of an e-mail address, which a dictionary reverses).
- Separated: two orgs (two keys) give unrelated pseudonyms for the same person.
- Rotatable: the version is part of the pseudonym, so data made under an old key
  version is still recognisable, and :meth:`KeyRing.candidates` lists every
  pseudonym a person had, e.g. for an erasure request.

Keys are arguments (from the settings object), never read from the environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "MIN_KEY_BYTES",
    "KeyRing",
    "PseudonymError",
    "UnknownKeyVersion",
    "UnknownOrg",
    "WeakKey",
    "key_version_of",
    "pseudonymize",
]

MIN_KEY_BYTES = 16
_DOMAIN = b"candor.pseudonym.v1\x00"
_DIGEST_CHARS = 26


class PseudonymError(Exception):
    """Base of this module's errors."""


class WeakKey(PseudonymError, ValueError):
    """A key shorter than :data:`MIN_KEY_BYTES`."""


class UnknownOrg(PseudonymError, KeyError):
    """The key ring holds no key for this org."""


class UnknownKeyVersion(PseudonymError, KeyError):
    """The key ring holds no key of this version for the org."""


def pseudonymize(identity: str, org_key: bytes, key_version: int) -> str:
    """Return the pseudonym of ``identity`` under ``org_key`` (version ``key_version``).

    Raises :class:`WeakKey` for a key under 16 bytes and ``ValueError`` for a
    version below 1.
    """
    if len(org_key) < MIN_KEY_BYTES:
        raise WeakKey(f"pseudonym keys need at least {MIN_KEY_BYTES} bytes")
    if key_version < 1:
        raise ValueError("key_version must be >= 1")
    mac = hmac.new(org_key, _DOMAIN + identity.encode("utf-8"), hashlib.sha256).digest()
    body = base64.b32encode(mac).decode("ascii").lower()[:_DIGEST_CHARS]
    return f"s{key_version}_{body}"


def key_version_of(pseudonym: str) -> int | None:
    """Return the key version a pseudonym was made with, or None if it is not one."""
    prefix, sep, body = pseudonym.partition("_")
    if not sep or len(body) != _DIGEST_CHARS or not prefix.startswith("s"):
        return None
    digits = prefix[1:]
    return int(digits) if digits.isdigit() and not digits.startswith("0") else None


@dataclass(frozen=True)
class KeyRing:
    """Per-org pseudonym keys by version; the highest version is the current one.

    Immutable: :meth:`rotate` returns a new ring. Build it with
    ``KeyRing({"org-a": {1: key1, 2: key2}})``; every key is checked for length
    (:class:`WeakKey`) and every version must be >= 1.
    """

    keys: Mapping[str, Mapping[int, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen: dict[str, Mapping[int, bytes]] = {}
        for org_id, versions in self.keys.items():
            for version, key in versions.items():
                if version < 1:
                    raise ValueError(f"{org_id}: key versions start at 1")
                if len(key) < MIN_KEY_BYTES:
                    raise WeakKey(f"{org_id} v{version}: key shorter than {MIN_KEY_BYTES} bytes")
            frozen[org_id] = MappingProxyType(dict(versions))
        object.__setattr__(self, "keys", MappingProxyType(frozen))

    def _versions(self, org_id: str) -> Mapping[int, bytes]:
        versions = self.keys.get(org_id)
        if not versions:
            raise UnknownOrg(org_id)
        return versions

    def current_version(self, org_id: str) -> int:
        """Return the org's current (highest) key version; :class:`UnknownOrg` if none."""
        return max(self._versions(org_id))

    def key(self, org_id: str, version: int | None = None) -> bytes:
        """Return the org's key of ``version`` (default current).

        Raises :class:`UnknownOrg` / :class:`UnknownKeyVersion`.
        """
        versions = self._versions(org_id)
        chosen = max(versions) if version is None else version
        if chosen not in versions:
            raise UnknownKeyVersion(f"{org_id} has no key version {chosen}")
        return versions[chosen]

    def pseudonymize(self, org_id: str, identity: str, version: int | None = None) -> str:
        """Return the pseudonym of ``identity`` in ``org_id`` under the current key
        (or ``version``). Raises :class:`UnknownOrg` / :class:`UnknownKeyVersion`.
        """
        chosen = self.current_version(org_id) if version is None else version
        return pseudonymize(identity, self.key(org_id, chosen), chosen)

    def candidates(self, org_id: str, identity: str) -> dict[int, str]:
        """Return ``{version: pseudonym}`` for every key version the org holds, so
        data made before a rotation can still be found (erasure, subject access).
        """
        return {
            version: pseudonymize(identity, key, version)
            for version, key in sorted(self._versions(org_id).items())
        }

    def rotate(self, org_id: str, new_key: bytes) -> KeyRing:
        """Return a ring where ``org_id`` has ``new_key`` as version current + 1
        (version 1 for a new org). Old versions are kept for lookups.
        """
        versions = dict(self.keys.get(org_id, {}))
        versions[max(versions, default=0) + 1] = new_key
        merged = {org: dict(v) for org, v in self.keys.items()}
        merged[org_id] = versions
        return KeyRing(merged)

    def retire(self, org_id: str, version: int) -> KeyRing:
        """Return a ring without ``org_id``'s key ``version``; the current version
        cannot be retired (``ValueError``). Raises :class:`UnknownKeyVersion`.
        """
        versions = dict(self._versions(org_id))
        if version not in versions:
            raise UnknownKeyVersion(f"{org_id} has no key version {version}")
        if version == max(versions):
            raise ValueError("the current key version cannot be retired; rotate first")
        del versions[version]
        merged = {org: dict(v) for org, v in self.keys.items()}
        merged[org_id] = versions
        return KeyRing(merged)
