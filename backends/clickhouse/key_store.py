"""The shared key store of crypto-shredding, kept in ClickHouse.

Design: the wrapped data keys live in the ``subject_keys`` table (migration
0003) so that every worker and sink, on any machine, reads the same store, and
ClickHouse's own replication and backups carry it. Only the admin CLI writes:
:func:`ensure_subject_key` (called by ``candor consent grant``) creates a
subject's key, :func:`destroy_subject_keys` (called by ``candor erase``) turns
every key of the subject into a tombstone with a synchronous mutation. Two
admins creating a key for one subject at once leave two live keys; readers all
pick the same one (:class:`privacy.keyset.KeySet`) and both decrypt.

Readers hold a :class:`KeyView`: the whole table unwrapped in memory, reloaded
every ``interval`` seconds by a thread (and at once when a token names a key id
it has not seen). Every write and the first load of each view are recorded in
``audit_log`` (actions ``key_create``, ``key_destroy``, ``key_load``,
``key_read``).

A :class:`KeyView` is the `privacy.content_keys.Keys` that the pure
encryption and decryption of `privacy.content_keys` take (the stream worker
encrypts before publishing, the sinks decrypt before landing).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from clickhouse_connect.driver.client import Client

from backends.clickhouse.settings import HasClickHouse
from privacy.keyset import KeyRecord, KeySet
from privacy.keystore import DataKey, SubjectErased, UnknownDataKey, WrongMasterKey
from privacy.wrapping import make_check, new_data_key, verify_check, wrap_data_key
from schemas.clock import now_micros

__all__ = [
    "KeyView",
    "SubjectAlreadyErased",
    "destroy_subject_keys",
    "ensure_subject_key",
    "load_keyset",
    "mutation_target",
    "verify_master",
    "write_audit",
]

log = logging.getLogger(__name__)

KEYS_TABLE = "subject_keys"
CHECK_TABLE = "key_store_check"


class SubjectAlreadyErased(SubjectErased):
    """The subject's keys were destroyed: it gets no new key (and no new content)."""


def write_audit(
    client: Client, actor: str, action: str, subject: str, detail: Mapping[str, Any]
) -> None:
    """Append one row to ``audit_log``. Blocks; raises the driver's error."""
    client.insert(
        "audit_log",
        [[actor, action, subject, json.dumps(dict(detail), sort_keys=True)]],
        column_names=["actor", "action", "subject", "detail"],
    )


def verify_master(client: Client, master: bytes, *, create: bool = False) -> None:
    """Check ``master`` against the store's check value (the oldest row).

    With ``create`` and no check value yet, writes one for ``master``. Raises
    :class:`WrongMasterKey` on a mismatch, before anything else is written.
    """
    rows = client.query(
        f"SELECT check_value FROM {CHECK_TABLE} ORDER BY created_at LIMIT 1"
    ).result_rows
    if rows:
        verify_check(master, str(rows[0][0]))
        return
    if create:
        client.insert(CHECK_TABLE, [[make_check(master)]], column_names=["check_value"])
        verify_master(client, master)  # a concurrent first writer may have won


def _records(client: Client, subject: str | None = None) -> list[KeyRecord]:
    where = "" if subject is None else "WHERE subject_id = {subject:String}"
    rows = client.query(
        f"SELECT subject_id, key_id, wrapped_key, toUnixTimestamp64Micro(created_at), "
        f"destroyed FROM {KEYS_TABLE} {where}",
        parameters={} if subject is None else {"subject": subject},
    ).result_rows
    return [KeyRecord(str(s), str(k), str(w), int(c), bool(d)) for s, k, w, c, d in rows]


def load_keyset(client: Client, master: bytes, subject: str | None = None) -> KeySet:
    """Read the store (or one subject's rows) and unwrap it. Raises
    :class:`WrongMasterKey` when ``master`` is not the store's."""
    verify_master(client, master)
    return KeySet(_records(client, subject), master)


def ensure_subject_key(
    client: Client, master: bytes, subject: str, actor: str
) -> tuple[DataKey, bool]:
    """Return ``(the subject's live key, whether it was created now)``.

    Creates (wrapped under ``master``) and audits a key when the subject has
    none. Raises :class:`SubjectAlreadyErased` when all its keys were
    destroyed, :class:`WrongMasterKey` when ``master`` is not the store's.
    """
    verify_master(client, master, create=True)
    keys = KeySet(_records(client, subject), master)
    found = keys.live(subject)
    if found is not None:
        return found, False
    if keys.is_erased(subject):
        raise SubjectAlreadyErased(f"subject {subject!r} was erased; it gets no new data key")
    key = new_data_key()
    client.insert(
        KEYS_TABLE,
        [[subject, key.key_id, wrap_data_key(master, subject, key), now_micros(), actor]],
        column_names=["subject_id", "key_id", "wrapped_key", "created_at", "created_by"],
    )
    write_audit(client, actor, "key_create", subject, {"key_id": key.key_id})
    return key, True


def mutation_target(settings: HasClickHouse, table: str) -> str:
    """The table a mutation runs on: ``<t>_local ON CLUSTER c`` on a cluster."""
    cluster = settings.clickhouse.cluster
    return f"{table}_local ON CLUSTER {cluster}" if cluster else table


def destroy_subject_keys(
    client: Client, settings: HasClickHouse, subject: str, actor: str
) -> list[str]:
    """Destroy every live key of ``subject``; return their ids ([] when none).

    The wrapped keys are overwritten by a synchronous mutation (``mutations_sync
    = 2``: done on every replica when this returns) and the rows stay as
    tombstones. Audited as ``key_destroy``. Blocks on ClickHouse.
    """
    ids = [r.key_id for r in _records(client, subject) if not r.destroyed]
    if not ids:
        return []
    client.command(
        f"ALTER TABLE {mutation_target(settings, KEYS_TABLE)} UPDATE wrapped_key = '', "
        "destroyed = 1, destroyed_at = now64(6) WHERE subject_id = {subject:String} "
        "AND destroyed = 0 SETTINGS mutations_sync = 2",
        parameters={"subject": subject},
    )
    write_audit(client, actor, "key_destroy", subject, {"key_ids": ids})
    return ids


class KeyView:
    """Every process's read-only view of the store, reloaded in the background.

    ``start()`` loads the store once (raising :class:`WrongMasterKey` or the
    driver's error) and starts the reload thread; lookups are lock-free reads
    of an immutable :class:`KeySet`. A failed reload keeps the last snapshot
    and is logged; ``alive`` turns False only when the thread died.
    ``connect`` opens a client (one per view: clients are not thread-safe).
    """

    def __init__(
        self,
        connect: Callable[[], Client],
        master: bytes,
        interval: float = 5.0,
        actor: str | None = None,
    ) -> None:
        self._connect = connect
        self._master = master
        self._interval = interval
        self._actor = actor or f"{socket.gethostname()}:{os.getpid()}"
        self._keys = KeySet((), master)
        self._client: Client | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_load = 0.0
        self.loads = 0

    def start(self) -> None:
        """Load synchronously, audit the load, start the reload thread."""
        self._client = self._connect()
        self.reload()
        write_audit(self._client, self._actor, "key_load", "", {"subjects": len(self._keys)})
        self._thread = threading.Thread(target=self._run, name="key-view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reload thread (waits up to 10 s)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def alive(self) -> bool:
        """Whether the reload thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def reload(self) -> None:
        """Read the whole store now. Blocks; raises on failure."""
        with self._lock:
            client = self._client or self._connect()
            self._client = client
            self._keys = load_keyset(client, self._master)
            self._last_load = time.monotonic()
            self.loads += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.reload()
            except WrongMasterKey:
                log.critical("key store: master key no longer matches; keeping last keys")
            except Exception as err:  # keep serving the last snapshot
                log.warning("key store reload failed: %s", err)

    def live(self, subject: str) -> DataKey | None:
        """The subject's live key, or None (asks the thread to reload soon)."""
        found = self._keys.live(subject)
        if found is None and time.monotonic() - self._last_load > 1.0:
            self._wake.set()
        return found

    def is_erased(self, subject: str) -> bool:
        """Whether the subject's keys were all destroyed (as of the last load)."""
        return self._keys.is_erased(subject)

    def key_for_id(self, key_id: str) -> bytes:
        """The key with ``key_id``; reloads once (blocking) if it is unknown.

        Raises :class:`SubjectErased` or :class:`UnknownDataKey`."""
        try:
            return self._keys.key_for_id(key_id)
        except UnknownDataKey:
            if time.monotonic() - self._last_load < 0.5:
                raise
            self.reload()
            return self._keys.key_for_id(key_id)

    def __len__(self) -> int:
        return len(self._keys)
