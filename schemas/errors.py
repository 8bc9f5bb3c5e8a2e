"""Typed errors of the schema contract.

Every failure to turn bytes into a datum (or a datum into bytes) is one of the
`SchemaError` subclasses below, each carrying a machine-readable ``reason`` that
the dead-letter path copies into its headers and metrics labels. Callers branch
on the class or on ``reason``; they never need to catch fastavro's own errors.
"""

from __future__ import annotations

from typing import ClassVar


class SchemaError(Exception):
    """Base of every schema failure; ``reason`` is a stable, lowercase label."""

    reason: ClassVar[str] = "schema_error"


class Undecodable(SchemaError):
    """The bytes are not a Candor message: bad marker, truncated, or garbage body."""

    reason: ClassVar[str] = "undecodable"


class UnknownSchema(SchemaError):
    """The writer schema (by fingerprint or wire id) is not in the registry."""

    reason: ClassVar[str] = "unknown_schema"


class InvalidField(SchemaError):
    """A datum fails validation on encode, or a decoded value is out of its domain.

    ``field`` is the dotted path of the offending field (``""`` when the whole
    datum is at fault); it is also part of the message.
    """

    reason: ClassVar[str] = "invalid_field"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field or '<datum>'}: {problem}")

    def within(self, parent: str) -> InvalidField:
        """Return the same error with its field path placed under ``parent``."""
        if not parent:
            return self
        return InvalidField(f"{parent}.{self.field}" if self.field else parent, self.problem)


class TruncatedBatch(Undecodable):
    """A `DeviceBatch` whose body ends early or does not parse.

    Avro cannot tell a cut-off body from a corrupted one, so both are this; no
    event of such a record can be recovered (an array has no per-item framing).
    """

    reason: ClassVar[str] = "truncated_batch"


class BatchTooLarge(SchemaError):
    """A `capture.events` record over the batch limits (bytes or events); refused whole."""

    reason: ClassVar[str] = "batch_too_large"


class BatchHeaderMismatch(InvalidField):
    """An event of a batch names another org, subject or device than the batch
    header, or a seq outside the header's ``first_seq..last_seq``.

    Raised for that event alone: the batch's other events stand.
    """

    reason: ClassVar[str] = "batch_header_mismatch"


class DuplicateSeq(InvalidField):
    """An event of a batch repeats the seq of an earlier event of the same batch.

    The first event with the seq stands; each repetition is rejected alone.
    """

    reason: ClassVar[str] = "duplicate_seq"


class SchemaDefinitionError(SchemaError):
    """The `.avsc` tree itself is broken (bad file name, unresolved reference, ...).

    Raised while loading a registry, never while encoding or decoding.
    """

    reason: ClassVar[str] = "schema_definition"


class UnknownPayloadType(ValueError):
    """A capture event's ``payload.type`` is missing or not one of the contract's
    payload records (raised by `privacy.minimisation` and `sinks.rows`).

    A `ValueError`, not a `SchemaError`: the decoder has already accepted the
    datum, so this is a caller's contract breach rather than bad input bytes."""
