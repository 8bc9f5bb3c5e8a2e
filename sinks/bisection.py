"""Finding the rows ClickHouse rejects, by bisection. Pure: the insert is injected.

An insert is all-or-nothing. When it fails with `RowsRejected`, the batch is
split in halves and each half is inserted on its own, recursively, until the
rejected rows are isolated (a single row that fails) and the rest is written.
Each slice has its own dedup token, ``<batch token>#<lo>-<hi>`` (row indexes,
half-open), which depends only on the batch and on which rows fail: a replay
after a crash repeats the same slices and ClickHouse drops those already
written. Costs O(k log n) inserts for k bad rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from sinks.errors import RowsRejected


class Slices(Protocol):
    """Rows that have a length and slice into the same kind (a list of rows,
    `sinks.columns.Columns`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> Self: ...


R = TypeVar("R", bound=Slices)

Insert = Callable[[R, str], None]


@dataclass(frozen=True)
class Rejected:
    """One row ClickHouse refused: its index in the batch and the server's error."""

    index: int
    error: str
    code: int | None


def slice_token(token: str, lo: int, hi: int) -> str:
    """The dedup token of rows ``[lo, hi)`` of the batch whose token is ``token``."""
    return f"{token}#{lo}-{hi}"


def insert_bisecting(rows: R, token: str, insert: Insert[R]) -> list[Rejected]:
    """Insert ``rows`` with ``insert(rows, token)``; return the rows refused, in index order.

    ``insert`` must raise `RowsRejected` when some row is refused (and then
    have written nothing); any other exception propagates unchanged, leaving
    already-written slices in place (their tokens make the retry idempotent).
    Returns ``[]`` when the whole batch went in with ``token`` in one insert.
    """
    if not rows:
        return []
    try:
        insert(rows, token)
        return []
    except RowsRejected as err:
        if len(rows) == 1:
            return [Rejected(0, err.error, err.code)]
        first_error = err
    rejected: list[Rejected] = []
    _bisect(rows, token, insert, 0, len(rows), rejected, first_error)
    return rejected


def _bisect(
    rows: R,
    token: str,
    insert: Insert[R],
    lo: int,
    hi: int,
    rejected: list[Rejected],
    error: RowsRejected,
) -> None:
    """Insert rows[lo:hi], known to contain a refused row (``error``)."""
    if hi - lo == 1:
        rejected.append(Rejected(lo, error.error, error.code))
        return
    mid = (lo + hi) // 2
    for a, b in ((lo, mid), (mid, hi)):
        try:
            insert(rows[a:b], slice_token(token, a, b))
        except RowsRejected as err:
            _bisect(rows, token, insert, a, b, rejected, err)
