"""A read-only snapshot of a shared key store: wrapped keys in, usable keys out.

Stream workers and sinks do not own keys; they read the rows of a shared store
(:mod:`backends.clickhouse.key_store` keeps them in ClickHouse) and build a :class:`KeySet`:
every live key unwrapped with the master key, every destroyed key id
remembered so that a ciphertext under it reads as *erased*, not as *unknown*.
Pure: the rows and the master key are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from privacy.keystore import DataKey, SubjectErased, UnknownDataKey
from privacy.wrapping import unwrap_data_key

__all__ = ["KeyRecord", "KeySet"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One row of a shared key store.

    ``wrapped_key`` is empty once the key is destroyed; ``created_at`` is in
    microseconds and only orders a subject's keys.
    """

    subject_id: str
    key_id: str
    wrapped_key: str
    created_at: int
    destroyed: bool


class KeySet:
    """Immutable map of subjects and key ids to data keys, with erasure tombstones.

    When one subject has several live keys (two admins created one at the same
    time), every process picks the same one for encryption: the oldest
    (``created_at``, then ``key_id``); all of them decrypt. A key id seen both
    live and destroyed counts as destroyed.

    Construction unwraps every live key and raises
    :class:`privacy.keystore.WrongMasterKey` when ``master`` does not open one,
    or :class:`privacy.wrapping.MalformedWrappedKey` for a corrupt row.
    """

    def __init__(self, records: Iterable[KeyRecord], master: bytes) -> None:
        rows = list(records)
        self._destroyed: frozenset[str] = frozenset(r.key_id for r in rows if r.destroyed)
        self._erased_subjects: set[str] = {r.subject_id for r in rows if r.destroyed}
        by_id: dict[str, bytes] = {}
        live: dict[str, tuple[tuple[int, str], DataKey]] = {}
        for r in rows:
            if r.destroyed or r.key_id in self._destroyed:
                continue
            key = unwrap_data_key(master, r.subject_id, r.key_id, r.wrapped_key)
            by_id[r.key_id] = key.key
            rank = (r.created_at, r.key_id)
            held = live.get(r.subject_id)
            if held is None or rank < held[0]:
                live[r.subject_id] = (rank, key)
        self._by_id = by_id
        self._live = {subject: key for subject, (_rank, key) in live.items()}
        self._erased_subjects -= set(self._live)

    def live(self, subject: str) -> DataKey | None:
        """Return the key to encrypt ``subject``'s content with, or None when the
        subject has no live key (never created, or erased)."""
        return self._live.get(subject)

    def is_erased(self, subject: str) -> bool:
        """Return whether ``subject`` had keys and all of them were destroyed."""
        return subject in self._erased_subjects

    def key_for_id(self, key_id: str) -> bytes:
        """Return the key with ``key_id``.

        Raises :class:`SubjectErased` when it was destroyed and
        :class:`UnknownDataKey` when this snapshot never saw it.
        """
        if key_id in self._destroyed:
            raise SubjectErased(f"data key {key_id} was destroyed")
        try:
            return self._by_id[key_id]
        except KeyError:
            raise UnknownDataKey(key_id) from None

    def knows(self, key_id: str) -> bool:
        """Return whether ``key_id`` is live or destroyed in this snapshot."""
        return key_id in self._by_id or key_id in self._destroyed

    def __len__(self) -> int:
        """The number of subjects with a live key."""
        return len(self._live)
