"""A batch of rows held as columns: what the sinks build and insert. Pure.

clickhouse-connect inserts in ClickHouse's Native format, which is columnar:
given rows, it turns them into one list per column (``column_oriented=True``
skips that). `Columns` is that shape, built per batch: `add_row` for records
that are one row, `add_rows` for a record of many (`sinks.rows.event_rows`
for a `CleanBatch`'s events), `extend` for rows given as columns. It slices like a
sequence of rows (``columns[lo:hi]``, `len`), so `sinks.bisection` splits it
to find the rows ClickHouse refuses, and `row(i)` returns one row for a
message or a log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, overload

Row = tuple[Any, ...]


class Columns(Sequence[Row]):
    """``width`` lists of equal length, the n-th value of each making row n.

    A `Sequence` of rows (indexing returns a row tuple, slicing a `Columns`),
    whose ``lists`` go to ``client.insert(..., column_oriented=True)`` as they
    are. Rows added one by one wait as tuples and are turned into columns at
    once (in C, by `zip`) when the lists are next read or extended, or when
    `WAITING_ROWS` of them wait: a record that is one row costs a tuple, not
    ``width`` appends. Not thread-safe; the lists are the instance's own.
    """

    # Why a bound: tuples waiting for a whole Kafka batch (tens of thousands)
    # outlive several runs of the garbage collector, which walks them each time
    # and, once they reach the oldest generation, everything else too (measured:
    # more than building them cost). A few dozen die young; 512 still cost
    # ~0.6 us per event more than 64 (`bench/sink.py --cpu`).
    WAITING_ROWS = 64

    __slots__ = ("_lists", "_rows")

    def __init__(self, width: int, lists: list[list[Any]] | None = None) -> None:
        """Empty columns, or ``lists`` as they are (one per column, equal lengths;
        raises `ValueError` otherwise)."""
        if lists is None:
            lists = [[] for _ in range(width)]
        elif len(lists) != width or len({len(c) for c in lists}) > 1:
            raise ValueError(f"expected {width} columns of one length")
        self._lists = lists
        self._rows: list[Row] = []

    @property
    def lists(self) -> list[list[Any]]:
        """One list per column (the rows waiting as tuples moved into them first)."""
        if self._rows:
            self._move_rows()
        return self._lists

    def _move_rows(self) -> None:
        rows, self._rows = self._rows, []
        for column, values in zip(self._lists, zip(*rows, strict=True), strict=True):
            column.extend(values)

    @classmethod
    def from_rows(cls, rows: Iterable[Row], width: int) -> Columns:
        """The columns of ``rows`` (each of ``width`` values)."""
        out = cls(width)
        for row in rows:
            out.add_row(row)
        return out

    @property
    def width(self) -> int:
        """How many columns."""
        return len(self.lists)

    def add_row(self, row: Row) -> None:
        """Append one row (``width`` values; raises `ValueError` otherwise)."""
        if len(row) != len(self._lists):
            raise ValueError(f"a row of {len(row)} values for {len(self._lists)} columns")
        self._rows.append(row)
        if len(self._rows) >= self.WAITING_ROWS:
            self._move_rows()

    def add_rows(self, rows: Sequence[Row]) -> None:
        """Append ``rows`` (each of ``width`` values; raises `ValueError`, adding
        none, otherwise). Like `add_row`, they wait as tuples: the rows of a whole
        Kafka batch are turned into columns by one `zip`, not record by record."""
        width = len(self._lists)
        if any(len(row) != width for row in rows):
            raise ValueError(f"a row not of {width} values")
        self._rows.extend(rows)
        if len(self._rows) >= self.WAITING_ROWS:
            self._move_rows()

    def extend(self, columns: Sequence[Sequence[Any]]) -> None:
        """Append rows given as columns (``width`` sequences of one length)."""
        lists = self.lists
        if len(columns) != len(lists) or len({len(c) for c in columns}) > 1:
            raise ValueError(f"expected {len(lists)} columns of one length")
        for mine, values in zip(lists, columns, strict=True):
            mine.extend(values)

    def row(self, index: int) -> Row:
        """Row ``index`` as a tuple (negative counts from the end)."""
        return tuple(column[index] for column in self.lists)

    def __len__(self) -> int:
        return (len(self._lists[0]) if self._lists else 0) + len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> Columns: ...

    def __getitem__(self, index: int | slice) -> Row | Columns:
        if isinstance(index, slice):
            lists = self.lists
            return Columns(len(lists), [column[index] for column in lists])
        return self.row(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Columns):
            return self.lists == other.lists
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Columns({len(self._lists)} x {len(self)})"
