"""Erasure of one subject: consent revoked, keys destroyed, rows deleted, receipt kept.

`erase(settings, subject)` runs, in this order (each step is idempotent, so a
run that failed half-way is simply repeated; only the receipt, written last,
makes a second run fail with :class:`AlreadyErased`):

1. **Revoke every scope** (a new version in ``consent.policies``, reason
   ``erasure``): workers stop keeping the subject's events within a poll, and the
   export's consent filter excludes them.
2. **Destroy the subject's data keys** (:func:`backends.clickhouse.key_store.destroy_subject_keys`):
   every copy of their content in ``capture.clean``/``training.actions``
   retention, replicas and backups becomes unreadable at once.
3. **Delete their rows** from ``events``, ``sessions``, ``activity_minutes_by_device``,
   ``actions`` (by ``subject_id``) and ``dead_letters`` (raw messages whose
   subject id *is* the subject: see :func:`dead_letter_holds`; erasing ``s1``
   never touches the dead letters of ``s10``) with synchronous mutations; after
   ``settle_s`` seconds the deletes run again, for rows that were already in
   flight through worker and sinks.
4. **List the exports** whose subject list holds them (``exports.subjects``):
   those datasets were copied out and must be recalled by their owners.
5. **Write the receipt** to ``audit_log`` (action ``erase``; the sink and the
   export then keep excluding the subject for good).

Kept on purpose: ``consent_ledger`` (the evidence of what the person consented
to and when, a legal record that holds no captured content), ``audit_log`` (the
receipt itself and the history of key and consent changes), ``exports`` (which
datasets held whom: without it a later erasure could not list them) and the
``subject_keys`` tombstones (key ids only). All hold the pseudonymous subject id,
never content.

Not reached: ``capture.events`` holds raw client events in clear until its
retention (``settings.retention.capture_events_hours``) ends; the receipt states
the time by which it has expired.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from backends.clickhouse.key_store import destroy_subject_keys, mutation_target, write_audit
from backends.clickhouse.settings import ClickHouseSettings
from backends.frame_store import FrameStoreSettings
from backends.kafka.settings import KafkaSettings, RetentionSettings
from privacy.consent import ConsentPolicy, revoke
from schemas.clock import now_micros

__all__ = [
    "DELETED_TABLES",
    "AlreadyErased",
    "ErasureError",
    "ExportRef",
    "InvalidSubject",
    "Receipt",
    "UnknownSubject",
    "dead_letter_holds",
    "erase",
    "find_receipt",
]

# Tables whose rows of the subject are deleted, by subject_id.
# activity_minutes is a view over activity_minutes_by_device (migration 0005): rows go there
DELETED_TABLES: tuple[str, ...] = ("events", "sessions", "activity_minutes_by_device", "actions")
HOUR_MICROS = 3_600_000_000


class ErasureSettings(Protocol):
    """What an erasure reads (`candor.settings.Settings` has it all)."""

    @property
    def home(self) -> Path: ...
    @property
    def kafka(self) -> KafkaSettings: ...
    @property
    def clickhouse(self) -> ClickHouseSettings: ...
    @property
    def retention(self) -> RetentionSettings: ...
    @property
    def frames(self) -> FrameStoreSettings: ...


class ErasureError(Exception):
    """Base of the erasure's refusals (bad input; nothing was changed)."""


class InvalidSubject(ErasureError, ValueError):
    """An empty or whitespace-padded subject id."""


class UnknownSubject(ErasureError, LookupError):
    """Candor holds nothing about this subject: no consent, no key, no row."""


class AlreadyErased(ErasureError):
    """An erasure receipt for this subject exists; ``.receipt`` holds it."""

    def __init__(self, subject: str, receipt: dict[str, Any]) -> None:
        super().__init__(
            f"subject {subject!r} was already erased (receipt {receipt.get('erasure_id')})"
        )
        self.receipt = receipt


@dataclass(frozen=True)
class ExportRef:
    """An export that held the subject."""

    export_id: str
    created_at: int
    shard_paths: list[str]


@dataclass(frozen=True)
class Receipt:
    """What one erasure did; written to ``audit_log`` as JSON (``to_dict``)."""

    erasure_id: str
    subject: str
    actor: str
    started_at: int
    finished_at: int
    consent_version: int | None  # the revoking version published, None if none was due
    key_ids: list[str]  # every destroyed key of the subject (tombstones)
    rows_deleted: dict[str, int]
    late_rows_deleted: dict[str, int]
    exports: list[ExportRef] = field(default_factory=list)
    raw_topic_clear_by: int = 0  # micros: capture.events retention ends
    frames_deleted: int = 0  # sealed screen frames removed from the frame store

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the receipt."""
        return asdict(self)


Revoker = Callable[[str, str], ConsentPolicy | None]


def find_receipt(client: Client, subject: str) -> dict[str, Any] | None:
    """Return the subject's erasure receipt from ``audit_log``, or None."""
    rows = client.query(
        "SELECT detail FROM audit_log WHERE action = 'erase' AND subject = {s:String} "
        "ORDER BY at LIMIT 1",
        parameters={"s": subject},
    ).result_rows
    if not rows:
        return None
    try:
        found: dict[str, Any] = json.loads(str(rows[0][0]))
    except ValueError:
        found = {"detail": str(rows[0][0])}
    return found


def _count(client: Client, table: str, where: str, subject: str) -> int:
    rows = client.query(
        f"SELECT count() FROM {table} WHERE {where}", parameters={"s": subject}
    ).result_rows
    return int(rows[0][0])


def _subject_ids(datum: object) -> set[str]:
    """Every ``subject_id`` value anywhere in a decoded record (a batch holds many)."""
    found: set[str] = set()
    stack = [datum]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            value = node.get("subject_id")
            if isinstance(value, str):
                found.add(value)
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return found


def _avro_string(text: str) -> bytes:
    """``text`` as Avro encodes a string: zigzag varint length, then UTF-8."""
    body = text.encode()
    n, out = len(body) << 1, bytearray()  # zigzag of a non-negative length
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + body


def dead_letter_holds(raw: bytes, subject: str) -> bool:
    """Whether the dead letter ``raw`` is about ``subject`` exactly. Pure.

    A message that decodes (its schema may be known by now) matches when one of
    its ``subject_id`` values equals ``subject``. One that does not matches when
    it holds ``subject`` as a whole Avro string (its length prefix included, so
    ``s1`` is not found inside ``s10``) or as a whole JSON ``"subject_id"``
    value. A false match is possible only for content that embeds that exact
    encoding; a miss is not: every encoding Candor writes is one of these.
    """
    from schemas.codec import decode
    from schemas.errors import SchemaError

    try:
        _name, datum = decode(raw)
    except (SchemaError, ValueError, KeyError, TypeError, IndexError, EOFError):
        datum = None
    if datum is not None:
        return subject in _subject_ids(datum)
    if _avro_string(subject) in raw:
        return True
    quoted = re.escape(json.dumps(subject).encode())
    return re.search(rb'"subject_id"\s*:\s*' + quoted, raw) is not None


def _dead_letters_of(client: Client, subject: str) -> list[tuple[str, int, int, str]]:
    """The original coordinates and reason of the subject's dead letters."""
    rows = client.query(
        "SELECT original_topic, original_partition, original_offset, reason, raw "
        "FROM dead_letters WHERE position(raw, {s:String}) > 0",
        parameters={"s": subject},
        column_formats={"raw": "bytes"},
    ).result_rows
    found = set()
    for topic, partition, offset, reason, raw in rows:
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
        if dead_letter_holds(data, subject):
            found.add((str(topic), int(partition), int(offset), str(reason)))
    return sorted(found)


def _footprint(client: Client, subject: str) -> dict[str, int]:
    where = "subject_id = {s:String}"
    found = {
        t: _count(client, t, where, subject)
        for t in (*DELETED_TABLES, "consent_ledger", "subject_keys")
    }
    found["dead_letters"] = len(_dead_letters_of(client, subject))
    return found


def _delete(client: Client, settings: ErasureSettings, subject: str) -> dict[str, int]:
    """Delete the subject's rows everywhere; return the rows each table held."""
    deleted: dict[str, int] = {}
    for table in DELETED_TABLES:
        where = "subject_id = {s:String}"
        n = _count(client, table, where, subject)
        deleted[table] = n
        if n:
            client.command(
                f"ALTER TABLE {mutation_target(settings, table)} DELETE "
                f"WHERE {where} SETTINGS mutations_sync = 2",
                parameters={"s": subject},
            )
    letters = _dead_letters_of(client, subject)
    deleted["dead_letters"] = len(letters)
    if letters:
        client.command(
            f"ALTER TABLE {mutation_target(settings, 'dead_letters')} DELETE WHERE "
            "(original_topic, original_partition, original_offset, reason) IN "
            "{keys:Array(Tuple(String, Int32, Int64, String))} SETTINGS mutations_sync = 2",
            parameters={"keys": letters},
        )
    return deleted


def _default_revoker(settings: ErasureSettings) -> Revoker:
    def revoke_all(subject: str, actor: str) -> ConsentPolicy | None:
        from backends.kafka.consent_registry import load_registry, publish

        current = load_registry(settings).get(subject)
        if current is None or not current.scopes:
            return None
        policy = revoke(current, None, actor, now_micros(), reason="erasure")
        publish(settings, [policy])
        return policy

    return revoke_all


def erase(
    settings: ErasureSettings,
    subject: str,
    *,
    actor: str = "candor-erase",
    settle_s: float = 5.0,
    client: Client | None = None,
    revoker: Revoker | None = None,
    known: Callable[[str], bool] | None = None,
) -> Receipt:
    """Erase ``subject`` (module docstring) and return the receipt.

    Raises, before changing anything: :class:`InvalidSubject`,
    :class:`AlreadyErased` (a receipt exists), :class:`UnknownSubject` (no
    consent in the registry, no key, no row anywhere). Blocks on Kafka and
    ClickHouse for a few seconds plus ``settle_s``. ``revoker`` (default:
    revoke all scopes in ``consent.policies``) and ``known`` (default: the
    subject has a policy in the registry) are for tests and other registries.
    """
    from backends.clickhouse.connection import connect

    if not subject or subject != subject.strip():
        raise InvalidSubject(f"invalid subject id {subject!r}")
    client = client or connect(settings)
    receipt = find_receipt(client, subject)
    if receipt is not None:
        raise AlreadyErased(subject, receipt)
    started = now_micros()
    footprint = _footprint(client, subject)
    if not any(footprint.values()) and not (known or _in_registry(settings))(subject):
        raise UnknownSubject(f"no consent, key or data for subject {subject!r}")
    policy = (revoker or _default_revoker(settings))(subject, actor)
    destroy_subject_keys(client, settings, subject, actor)
    from backends.frame_store import open_frame_store  # frames: key destroyed, then deleted

    frames = open_frame_store(settings.frames, settings.home).delete_subject(subject)
    deleted = _delete(client, settings, subject)
    if settle_s > 0:
        time.sleep(settle_s)
    late = _delete(client, settings, subject)
    rows = client.query(
        "SELECT export_id, toUnixTimestamp64Micro(created_at), shard_paths FROM exports "
        "WHERE has(subjects, {s:String}) ORDER BY created_at",
        parameters={"s": subject},
    ).result_rows
    keys = client.query(
        "SELECT key_id FROM subject_keys WHERE subject_id = {s:String} "
        "AND destroyed = 1 ORDER BY key_id",
        parameters={"s": subject},
    ).result_rows
    result = Receipt(
        erasure_id=str(uuid.uuid4()),
        subject=subject,
        actor=actor,
        started_at=started,
        finished_at=now_micros(),
        consent_version=None if policy is None else policy.version,
        key_ids=[str(k) for (k,) in keys],
        rows_deleted=deleted,
        late_rows_deleted=late,
        exports=[ExportRef(str(e), int(c), [str(p) for p in paths]) for e, c, paths in rows],
        raw_topic_clear_by=started + settings.retention.capture_events_hours * HOUR_MICROS,
        frames_deleted=frames,
    )
    write_audit(client, actor, "erase", subject, result.to_dict())
    return result


def _in_registry(settings: ErasureSettings) -> Callable[[str], bool]:
    def known(subject: str) -> bool:
        from backends.kafka.consent_registry import load_registry

        return load_registry(settings).get(subject) is not None

    return known
