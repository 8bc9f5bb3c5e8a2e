"""Content encryption of the pipeline's records under their subject's key. Pure.

The keys come in as a `Keys` (the ClickHouse key store's
`backends.clickhouse.key_store.KeyView`, or a `privacy.keyset.KeySet`):

- :func:`seal_clean_batch` (stream worker, just before publishing a
  ``CleanBatch``): the content fields of one input record's clean events
  sealed in one ciphertext under the subject's key (cleared, as below, when
  it has none); :func:`open_clean_batch` opens it (sinks).
- :func:`encrypt_clean_event` / :func:`encrypt_action` (stream worker, just
  before publishing): content fields become tokens under the subject's key; a
  subject *without* a live key gets its content fields cleared (counts kept,
  ``"no_data_key"`` in the redaction trail). Deny by default: content is never
  published in clear because a key is missing.
- :func:`decrypt_record` (what the sinks' `sink_decrypt` hook calls): clean
  batches, events and actions come back in clear; content of an erased subject becomes empty
  (``None``); other records pass unchanged. The record type comes from the
  sink's route (`sinks.routes.Route.record`), never from the datum's keys. A
  token under a key the store never had raises
  :class:`privacy.shredding.UndecryptableField` (the sink dead-letters it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from privacy.keystore import DataKey, SubjectErased, UnknownDataKey
from privacy.shredding import (
    UndecryptableField,
    batch_aad,
    clear_action_content,
    clear_event_content,
    decrypt_action_content,
    decrypt_event_content,
    encrypt_action_content,
    encrypt_event_content,
    open_batch,
    seal_batch,
)

__all__ = [
    "ACTION",
    "CAPTURE_EVENT",
    "CLEAN_BATCH",
    "NO_DATA_KEY",
    "Decrypt",
    "Keys",
    "decrypt_record",
    "encrypt_action",
    "encrypt_clean_event",
    "keep_content",
    "open_clean_batch",
    "seal_clean_batch",
    "sink_decrypt",
]

NO_DATA_KEY = "no_data_key"
# The records whose content is encrypted (names of the Avro records, schemas/avro/).
CAPTURE_EVENT = "CaptureEvent"
CLEAN_BATCH = "CleanBatch"
ACTION = "Action"

# A sink's decrypt hook: (the route's record name, the decoded datum) -> the
# datum to land (content decrypted), or None to skip the record entirely (its
# subject was erased): neither landed nor dead-lettered.
Decrypt = Callable[[str, dict[str, Any]], dict[str, Any] | None]


class Keys(Protocol):
    """What encryption and decryption need: a subject's live key, a key by id."""

    def live(self, subject: str) -> DataKey | None:
        """Return the subject's live key or None."""
        ...

    def key_for_id(self, key_id: str) -> bytes:
        """Return the key; raise ``SubjectErased`` or ``UnknownDataKey``."""
        ...

    def is_erased(self, subject: str) -> bool:
        """True when the subject's keys were destroyed."""
        ...


def encrypt_clean_event(event: Mapping[str, Any], keys: Keys) -> dict[str, Any]:
    """Return ``event`` ready for ``capture.clean``: content fields encrypted under
    the subject's live key, or cleared (``"no_data_key"`` in ``redactions``) when
    the subject has none. Not mutating; pure given ``keys``."""
    key = keys.live(str(event["subject_id"]))
    if key is None:
        return clear_event_content(event, trail=NO_DATA_KEY)
    return encrypt_event_content(event, key)


def encrypt_action(action: Mapping[str, Any], keys: Keys) -> dict[str, Any]:
    """Return ``action`` ready for ``training.actions``: text, window title and
    command encrypted, or cleared (``"no_data_key"`` added to ``redactions``)
    when the subject has no live key. Not mutating."""
    key = keys.live(str(action["subject_id"]))
    if key is not None:
        return encrypt_action_content(action, key)
    out = clear_action_content(action)
    if any(action.get(f) for f in ("text", "window_title", "command")):
        out["redactions"] = [*(action.get("redactions") or []), NO_DATA_KEY]
    return out


def seal_clean_batch(batch_id: str, events: list[dict[str, Any]], keys: Keys) -> dict[str, Any]:
    """Return the `CleanBatch` datum of ``events`` (clean events of one input
    record: one org, subject and device, at least one): their content fields
    sealed in one ciphertext under the subject's live key (`seal_batch`), or,
    when the subject has none, cleared with ``"no_data_key"`` in the trail of
    each event that had content. Not mutating; pure given ``keys``."""
    first = events[0]
    subject, device = str(first["subject_id"]), str(first["device_id"])
    lo = hi = first["seq"]
    for event in events:  # min and max in one pass (the worker runs this per input record)
        seq = event["seq"]
        if seq < lo:
            lo = seq
        elif seq > hi:
            hi = seq
    key = keys.live(subject)
    content: bytes | None = None
    if key is None:
        sealed = [clear_event_content(e, trail=NO_DATA_KEY) for e in events]
    else:
        sealed, content = seal_batch(events, key, batch_aad(subject, device, lo, hi, batch_id))
    return {
        "batch_id": batch_id,
        "org_id": first["org_id"],
        "subject_id": subject,
        "device_id": device,
        "first_seq": lo,
        "last_seq": hi,
        "key_id": None if content is None or key is None else key.key_id,
        "content": content,
        "events": sealed,
    }


def open_clean_batch(batch: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """Return ``batch`` (a decoded `CleanBatch`, mutated) with its events' content
    in clear. Raises `SubjectErased` when its key was destroyed (the events
    then hold the contract's empty values) and `UndecryptableField` for a key
    the store never had or content that does not open."""
    content, key_id = batch.get("content"), batch.get("key_id")
    if content is None or key_id is None:
        return batch
    try:
        key = keys.key_for_id(str(key_id))
    except UnknownDataKey:
        raise UndecryptableField(f"unknown data key {key_id}") from None
    open_batch(
        batch["events"],
        content,
        key,
        batch_aad(
            batch["subject_id"],
            batch["device_id"],
            batch["first_seq"],
            batch["last_seq"],
            batch["batch_id"],
        ),
    )
    return batch


def decrypt_record(record: str, datum: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """A `record` (``"CaptureEvent"``, ``"Action"``, ...) with its content in
    clear, content of an erased subject emptied; a record without encrypted
    content unchanged.

    Raises :class:`privacy.shredding.UndecryptableField` for a corrupt token or
    one under a key the store never held."""
    if record == CLEAN_BATCH:
        try:
            return open_clean_batch(datum, keys)
        except SubjectErased:
            return datum  # its content fields hold the contract's empty values
    if record == CAPTURE_EVENT:
        try:
            return decrypt_event_content(datum, keys)
        except SubjectErased:
            return clear_event_content(datum, encrypted_only=True)
    if record == ACTION:
        try:
            return decrypt_action_content(datum, keys)
        except SubjectErased:
            return clear_action_content(datum)
    return datum


def sink_decrypt(keys: Keys) -> Decrypt:
    """The sinks' decrypt hook: None (skip, land nothing) for a record of an
    erased subject — sessions, minutes and actions included, even when a worker
    emitted them after the erasure — else `decrypt_record`."""

    def hook(record: str, datum: dict[str, Any]) -> dict[str, Any] | None:
        subject = datum.get("subject_id")
        if isinstance(subject, str) and keys.is_erased(subject):
            return None
        return decrypt_record(record, datum, keys)

    return hook


def keep_content(record: str, datum: dict[str, Any]) -> dict[str, Any]:
    """A decrypt hook for records that carry no encrypted content (tests,
    benchmarks, a pipeline without encryption): the datum lands as it arrives.
    Never the default: a sink is always told how to decrypt."""
    return datum
