"""Wrapping data keys under a master key, for key stores shared by many processes.

A data key (:class:`privacy.keystore.DataKey`) is stored only *wrapped*:
AES-256-GCM under the master key, with associated data ``"<key_id>|<subject>"``
(the same binding :class:`privacy.keystore.FileKeyStore` uses), so a wrapped key
moved to another subject or id does not unwrap. A *check value* (the master key
encrypting a fixed text) lets a process tell "wrong master key" from "no keys yet"
before it writes anything. Pure: no I/O, no clock.

Wire form of a wrapped key and of the check value: standard base64 of
``nonce (12 bytes) || ciphertext``.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.keystore import DataKey, KeyStoreError, WrongMasterKey

__all__ = [
    "InvalidMasterKey",
    "MalformedWrappedKey",
    "make_check",
    "new_data_key",
    "parse_master_key",
    "unwrap_data_key",
    "verify_check",
    "wrap_data_key",
]

_NONCE_BYTES = 12
_CHECK_PLAINTEXT = b"candor.keystore.check.v1"


class InvalidMasterKey(KeyStoreError, ValueError):
    """A master key that is not 32 bytes given as 64 hex digits or base64."""


class MalformedWrappedKey(KeyStoreError, ValueError):
    """A stored wrapped key or check value that is not base64 of nonce + ciphertext."""


def parse_master_key(text: str) -> bytes:
    """Return the 32-byte master key written as 64 hex digits or as base64.

    Surrounding whitespace is ignored. Raises :class:`InvalidMasterKey` for any
    other length or alphabet; the message never contains the key.
    """
    text = text.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidMasterKey("master key must be 32 bytes, as 64 hex digits or base64")
    return raw


def _aesgcm(master: bytes) -> AESGCM:
    if len(master) != 32:
        raise InvalidMasterKey("master key must be 32 bytes")
    return AESGCM(master)


def _seal(master: bytes, plaintext: bytes, aad: bytes | None) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    return base64.b64encode(nonce + _aesgcm(master).encrypt(nonce, plaintext, aad)).decode()


def _open(master: bytes, sealed: str, aad: bytes | None, what: str) -> bytes:
    try:
        raw = base64.b64decode(sealed, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedWrappedKey(f"{what} is not base64") from None
    if len(raw) <= _NONCE_BYTES + 16:
        raise MalformedWrappedKey(f"{what} is too short")
    try:
        return _aesgcm(master).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise WrongMasterKey(f"master key does not open {what}") from None


def new_data_key() -> DataKey:
    """Return a fresh random 256-bit data key with a random 16-hex-digit id."""
    return DataKey(secrets.token_hex(8), AESGCM.generate_key(bit_length=256))


def wrap_data_key(master: bytes, subject: str, key: DataKey) -> str:
    """Return ``key`` wrapped under ``master``, bound to its id and ``subject``."""
    return _seal(master, key.key, f"{key.key_id}|{subject}".encode())


def unwrap_data_key(master: bytes, subject: str, key_id: str, wrapped: str) -> DataKey:
    """Return the data key of a wrapped entry.

    Raises :class:`WrongMasterKey` when authentication fails (other master key,
    entry moved to another subject/id, tampered) and :class:`MalformedWrappedKey`
    when ``wrapped`` is not a wrapped key at all.
    """
    key = _open(master, wrapped, f"{key_id}|{subject}".encode(), f"data key {key_id}")
    return DataKey(key_id, key)


def make_check(master: bytes) -> str:
    """Return a new check value for ``master`` (random nonce: differs per call)."""
    return _seal(master, _CHECK_PLAINTEXT, None)


def verify_check(master: bytes, check: str) -> None:
    """Return when ``check`` was made with ``master``; raise :class:`WrongMasterKey`
    otherwise (:class:`MalformedWrappedKey` for a corrupt value)."""
    if _open(master, check, None, "the key store check value") != _CHECK_PLAINTEXT:
        raise WrongMasterKey("master key does not match the key store")
