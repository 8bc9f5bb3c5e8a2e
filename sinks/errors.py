"""The sink's typed errors and how a ClickHouse failure is classified. Pure.

Three kinds of insert failure, decided from the server's error code
(`classify`):

- *transient*: the server or the network will recover (connection refused or
  reset, timeouts, TOO_MANY_PARTS, memory limits, replica/keeper trouble):
  retry the same batch with the same dedup token, with backoff.
- *rows*: some rows of the batch are wrong for the table (a CHECK constraint,
  a value out of range, a type the column cannot hold): bisect the batch,
  dead-letter the rejected rows with the server's error, insert the rest.
- *fatal*: nothing will succeed until an operator acts (unknown table or
  database, authentication, missing column, read-only): stop the sink with
  `FatalSinkError`; offsets stay uncommitted, so nothing is lost.

An error code not in these tables is fatal: stopping is safer than
dead-lettering a whole topic for an unknown reason.
"""

from __future__ import annotations

from enum import Enum

from backends.dlq_limit import DlqLimitExceeded


class FailureKind(Enum):
    TRANSIENT = "transient"
    ROWS = "rows"
    FATAL = "fatal"


TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY (replica lost its keeper session)
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED (server shutting down)
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)

ROW_CODES: frozenset[int] = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        469,  # VIOLATED_CONSTRAINT
    }
)

FATAL_CODES: frozenset[int] = frozenset(
    {
        16,  # NO_SUCH_COLUMN_IN_TABLE
        47,  # UNKNOWN_IDENTIFIER
        60,  # UNKNOWN_TABLE
        81,  # UNKNOWN_DATABASE
        164,  # READONLY
        192,  # UNKNOWN_USER
        193,  # WRONG_PASSWORD
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
    }
)


def classify(code: int | None, *, server_answered: bool, client_side: bool = False) -> FailureKind:
    """Return what to do about an insert failure.

    ``code`` is the ClickHouse error code when the server sent one;
    ``server_answered`` is False for transport failures (refused, reset,
    timeout before a response); ``client_side`` is True when the driver could
    not serialise a value (a row problem, found before any byte was sent).
    """
    if client_side:
        return FailureKind.ROWS
    if code is None:
        return FailureKind.FATAL if server_answered else FailureKind.TRANSIENT
    if code in TRANSIENT_CODES:
        return FailureKind.TRANSIENT
    if code in ROW_CODES:
        return FailureKind.ROWS
    return FailureKind.FATAL


class SinkError(RuntimeError):
    """Base of the sink's errors."""


class FatalSinkError(SinkError):
    """The sink cannot go on until an operator acts; its offsets are not committed.

    ``table`` is the target table, ``code`` the ClickHouse error code (None for a
    non-ClickHouse cause).
    """

    def __init__(self, table: str, message: str, code: int | None = None) -> None:
        super().__init__(f"sink into {table} stopped: {message}")
        self.table = table
        self.code = code


class RetriesExhausted(FatalSinkError):
    """A transient failure outlasted the retry policy."""


class DeadLetterLimitExceeded(SinkError, DlqLimitExceeded):
    """The dead-letter limit (`backends.dlq_limit`) was crossed on a partition:
    likely a bad deploy, not bad input.

    The batch is neither dead-lettered nor committed.
    """


class RowsRejected(SinkError):
    """ClickHouse (or the driver, before sending) refused some row of an insert.

    ``error`` is the server's message; the insert wrote nothing.
    """

    def __init__(self, error: str, code: int | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.code = code


class TransientInsertError(SinkError):
    """An insert failed for a reason that retrying may fix."""

    def __init__(self, error: str, code: int | None = None) -> None:
        super().__init__(error)
        self.code = code
