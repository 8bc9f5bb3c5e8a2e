"""Writing one batch into one ClickHouse table: dedup token, retries, bisection.

`TableWriter.write(rows, token)` is the only way the sink touches ClickHouse
for data. The batch is inserted as columns (`sinks.columns.Columns`: one
list per column, ``column_oriented=True``); rows given as tuples are turned
into columns first. Every insert carries ``insert_deduplication_token``: the whole batch
uses the batch token, the slices of a bisection their slice tokens
(`sinks.bisection`). The table's column types are asked of the server once
(clickhouse-connect asks with a ``DESCRIBE TABLE`` before every insert not
given them: a round trip, ~1.2 ms of the sink's CPU and some of the server's
per insert) and again after any failed insert, in case the table changed.
A transient failure is retried with the same token and
exponential backoff (`RetryPolicy`), so an insert that reached the server
before the connection dropped is not written twice. Rows the server refuses
are returned to the caller (to dead-letter them); a fatal failure raises
`FatalSinkError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

from sinks import metrics
from sinks.bisection import Rejected, insert_bisecting
from sinks.columns import Columns
from sinks.errors import (
    FailureKind,
    FatalSinkError,
    RetriesExhausted,
    RowsRejected,
    TransientInsertError,
    classify,
)

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``initial * factor**n`` seconds, capped at ``max_delay``.

    ``max_attempts`` counts the first try; the defaults wait about a minute in
    all before giving up (a ClickHouse restart takes seconds).
    """

    initial: float = 0.1
    factor: float = 2.0
    max_delay: float = 10.0
    max_attempts: int = 12

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.initial * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class WriteResult:
    """What one `TableWriter.write` did: rows written, rows refused, attempts retried."""

    written: int
    rejected: list[Rejected]
    retries: int


def as_insert_error(err: Exception, table: str) -> Exception:
    """Translate a clickhouse-connect exception into the sink's typed errors (pure).

    Returns `TransientInsertError`, `RowsRejected` or `FatalSinkError`;
    other exceptions are returned unchanged.
    """
    code = getattr(err, "code", None)
    message = str(err)
    if isinstance(err, DataError | ProgrammingError) and code is None:
        # The driver could not serialise a value: nothing was sent.
        kind = classify(None, server_answered=False, client_side=True)
    elif isinstance(err, OperationalError):
        kind = classify(code, server_answered=code is not None)
    elif isinstance(err, DatabaseError):
        kind = classify(code, server_answered=True)
    else:
        return err
    if kind is FailureKind.TRANSIENT:
        return TransientInsertError(message, code)
    if kind is FailureKind.ROWS:
        return RowsRejected(message, code)
    return FatalSinkError(table, message, code)


class TableWriter:
    """Inserts batches into ``table`` (columns ``columns``) through one client.

    Not thread-safe (one client); blocks while inserting and while backing off.
    """

    def __init__(
        self,
        client: Client,
        table: str,
        columns: Sequence[str],
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.columns = list(columns)
        self.retry = retry
        self.sleep = sleep
        self.settings = dict(settings or {})
        self._retries = 0
        self._types: Sequence[ClickHouseType] | None = None  # of `columns`, once asked

    def write(self, rows: Columns | Sequence[Row], token: str) -> WriteResult:
        """Insert ``rows`` (columns, or row tuples) exactly once under ``token``;
        return what was written and refused (by row index).

        Raises `FatalSinkError` (or `RetriesExhausted`) when nothing more can be
        written; rows of slices already inserted stay (their tokens make a
        replay idempotent). Blocks.
        """
        started = time.monotonic()
        self._retries = 0
        if not isinstance(rows, Columns):
            rows = Columns.from_rows(rows, len(self.columns))
        rejected = insert_bisecting(rows, token, self._insert_with_retry)
        metrics.INSERT_SECONDS.labels(self.table).observe(time.monotonic() - started)
        written = len(rows) - len(rejected)
        metrics.ROWS.labels(self.table).inc(written)
        metrics.BATCH_ROWS.labels(self.table).observe(len(rows))
        return WriteResult(written, rejected, self._retries)

    def _insert_with_retry(self, rows: Columns, token: str) -> None:
        attempt = 1
        while True:
            try:
                self._insert_once(rows, token)
                return
            except TransientInsertError as err:
                if attempt >= self.retry.max_attempts:
                    raise RetriesExhausted(
                        self.table, f"{attempt} attempts failed, last: {err}", err.code
                    ) from err
                delay = self.retry.delay(attempt)
                log.warning(
                    "insert into %s failed (%s); retry %d in %.2fs",
                    self.table,
                    str(err)[:200],
                    attempt,
                    delay,
                )
                metrics.RETRIES.labels(self.table).inc()
                self._retries += 1
                attempt += 1
                self.sleep(delay)

    def _insert_once(self, rows: Columns, token: str) -> None:
        try:
            if self._types is None:
                context = self.client.create_insert_context(
                    self.table, self.columns, settings=self.settings or None
                )
                self._types = context.column_types
            self.client.insert(
                self.table,
                rows.lists,
                column_names=self.columns,
                column_types=self._types,
                settings={**self.settings, "insert_deduplication_token": token},
                column_oriented=True,
            )
        except Exception as err:
            self._types = None  # asked again: the failure may be a table that changed
            translated = as_insert_error(err, self.table)
            if translated is err:
                raise
            raise translated from err
