"""Per-subject data keys: where crypto-shredding keeps (and destroys) them.

A :class:`KeyStore` maps a subject to one 256-bit AES data key with a random,
non-identifying ``key_id``. Destroying a subject's key leaves a tombstone holding
only the ``key_id`` (never the subject), so a later decryption can tell "erased"
(:class:`SubjectErased`) from "never existed" (:class:`UnknownDataKey`).
After a destroy, :meth:`KeyStore.get_or_create` makes a *new* key with a new id:
what was encrypted before stays unreadable.

:class:`FileKeyStore` keeps the data keys wrapped (AES-256-GCM) under a master key
in one JSON file, rewritten atomically (temp file, fsync, rename, fsync of the
directory) on every change. It serves one process; several writers need a shared
store (a KMS or a database) behind the same interface.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DataKey",
    "FileKeyStore",
    "InMemoryKeyStore",
    "KeyStore",
    "KeyStoreError",
    "SubjectErased",
    "UnknownDataKey",
    "WrongMasterKey",
]

_DATA_KEY_BYTES = 32
_NONCE_BYTES = 12
_FILE_FORMAT = 1
_CHECK_PLAINTEXT = b"candor.keystore.check.v1"


class KeyStoreError(Exception):
    """Base of the key store's errors."""


class SubjectErased(KeyStoreError):
    """The data key was destroyed: the subject was erased."""


class UnknownDataKey(KeyStoreError, KeyError):
    """No key with this id was ever held by the store."""


class WrongMasterKey(KeyStoreError):
    """The master key does not unwrap the store's keys (wrong key or tampered file)."""


class DataKey(NamedTuple):
    """A subject's data key and its public id."""

    key_id: str
    key: bytes


def _new_key_id() -> str:
    return secrets.token_hex(8)


class KeyStore(ABC):
    """Per-subject data keys with destruction."""

    @abstractmethod
    def get_or_create(self, subject: str) -> DataKey:
        """Return the subject's live key, creating (and persisting) one if none."""

    @abstractmethod
    def get(self, subject: str) -> bytes | None:
        """Return the subject's live key, or None when it has none (never made or
        destroyed)."""

    @abstractmethod
    def key_for_id(self, key_id: str) -> bytes:
        """Return the key with ``key_id``.

        Raises :class:`SubjectErased` when it was destroyed and
        :class:`UnknownDataKey` when this store never held it.
        """

    @abstractmethod
    def destroy(self, subject: str) -> bool:
        """Destroy the subject's live key; return False when there was none.
        Persisted before returning."""


class InMemoryKeyStore(KeyStore):
    """A :class:`KeyStore` in process memory (tests, single-shot tools)."""

    def __init__(self) -> None:
        self._by_subject: dict[str, DataKey] = {}
        self._by_id: dict[str, bytes] = {}
        self._destroyed: set[str] = set()

    def get_or_create(self, subject: str) -> DataKey:
        found = self._by_subject.get(subject)
        if found is None:
            found = DataKey(_new_key_id(), AESGCM.generate_key(bit_length=256))
            self._by_subject[subject] = found
            self._by_id[found.key_id] = found.key
        return found

    def get(self, subject: str) -> bytes | None:
        found = self._by_subject.get(subject)
        return None if found is None else found.key

    def key_for_id(self, key_id: str) -> bytes:
        if key_id in self._destroyed:
            raise SubjectErased(f"data key {key_id} was destroyed")
        try:
            return self._by_id[key_id]
        except KeyError:
            raise UnknownDataKey(key_id) from None

    def destroy(self, subject: str) -> bool:
        found = self._by_subject.pop(subject, None)
        if found is None:
            return False
        del self._by_id[found.key_id]
        self._destroyed.add(found.key_id)
        return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FileKeyStore(KeyStore):
    """A :class:`KeyStore` persisted as wrapped keys in a JSON file.

    ``master_key`` must be 16, 24 or 32 bytes. Opening an existing file with another
    master key raises :class:`WrongMasterKey` at construction (a check value is
    stored with the keys), as does a tampered wrapped key on first use.
    A missing file is created on the first change. Not safe for several processes.
    """

    def __init__(self, path: str | os.PathLike[str], master_key: bytes) -> None:
        if len(master_key) not in (16, 24, 32):
            raise ValueError("master_key must be 16, 24 or 32 bytes")
        self._path = Path(path)
        self._master = AESGCM(master_key)
        self._subjects: dict[str, dict[str, str]] = {}
        self._destroyed: set[str] = set()
        self._check = ""
        self._plain: dict[str, bytes] = {}
        self._subject_of: dict[str, str] = {}
        if self._path.exists():
            self._load()
        else:
            nonce = os.urandom(_NONCE_BYTES)
            self._check = _b64(nonce + self._master.encrypt(nonce, _CHECK_PLAINTEXT, None))

    def _load(self) -> None:
        data: dict[str, Any] = json.loads(self._path.read_text(encoding="utf-8"))
        if data.get("format") != _FILE_FORMAT:
            raise KeyStoreError(f"{self._path}: unsupported key store format")
        self._check = str(data["check"])
        raw = base64.b64decode(self._check)
        try:
            self._master.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except InvalidTag:
            raise WrongMasterKey(f"{self._path}: master key does not match") from None
        self._subjects = {s: dict(v) for s, v in data["subjects"].items()}
        self._destroyed = set(data["destroyed"])
        self._subject_of = {e["key_id"]: s for s, e in self._subjects.items()}

    def _save(self) -> None:
        document = {
            "format": _FILE_FORMAT,
            "check": self._check,
            "subjects": self._subjects,
            "destroyed": sorted(self._destroyed),
        }
        directory = self._path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _unwrap(self, subject: str, entry: dict[str, str]) -> bytes:
        key_id = entry["key_id"]
        cached = self._plain.get(key_id)
        if cached is not None:
            return cached
        raw = base64.b64decode(entry["wrapped"])
        aad = f"{key_id}|{subject}".encode()
        try:
            key = self._master.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise WrongMasterKey(f"cannot unwrap data key {key_id}") from None
        self._plain[key_id] = key
        return key

    def get_or_create(self, subject: str) -> DataKey:
        entry = self._subjects.get(subject)
        if entry is not None:
            return DataKey(entry["key_id"], self._unwrap(subject, entry))
        key_id = _new_key_id()
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_BYTES)
        wrapped = self._master.encrypt(nonce, key, f"{key_id}|{subject}".encode())
        self._subjects[subject] = {"key_id": key_id, "wrapped": _b64(nonce + wrapped)}
        try:
            self._save()
        except BaseException:
            del self._subjects[subject]
            raise
        self._subject_of[key_id] = subject
        self._plain[key_id] = key
        return DataKey(key_id, key)

    def get(self, subject: str) -> bytes | None:
        entry = self._subjects.get(subject)
        return None if entry is None else self._unwrap(subject, entry)

    def key_for_id(self, key_id: str) -> bytes:
        if key_id in self._destroyed:
            raise SubjectErased(f"data key {key_id} was destroyed")
        subject = self._subject_of.get(key_id)
        if subject is None:
            raise UnknownDataKey(key_id)
        return self._unwrap(subject, self._subjects[subject])

    def destroy(self, subject: str) -> bool:
        entry = self._subjects.pop(subject, None)
        if entry is None:
            return False
        self._destroyed.add(entry["key_id"])
        try:
            self._save()
        except BaseException:
            self._subjects[subject] = entry
            self._destroyed.discard(entry["key_id"])
            raise
        self._subject_of.pop(entry["key_id"], None)
        self._plain.pop(entry["key_id"], None)
        return True
