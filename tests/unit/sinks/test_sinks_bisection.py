"""Bisection finds exactly the refused rows and inserts the rest, deterministically."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sinks.bisection import insert_bisecting
from sinks.errors import RowsRejected


class FakeTable:
    """Refuses any insert that contains a negative row; dedups by token like ClickHouse."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.tokens: set[str] = set()
        self.calls = 0

    def insert(self, rows: Sequence[int], token: str) -> None:
        self.calls += 1
        bad = [r for r in rows if r < 0]
        if bad:
            raise RowsRejected(f"value {bad[0]} violates constraint", 469)
        if token in self.tokens:
            return
        self.tokens.add(token)
        self.rows.extend(rows)


@pytest.mark.parametrize(
    ("rows", "bad_indexes"),
    [
        ([1, 2, 3], []),
        ([-1], [0]),
        ([1, -2, 3, 4, 5, 6, 7], [1]),
        ([-1, 2, 3, -4, 5, 6, 7, -8], [0, 3, 7]),
        ([-1, -2, -3], [0, 1, 2]),
        ([*range(1, 1000), -5], [999]),
    ],
)
def test_refused_rows_are_isolated_and_the_rest_inserted(
    rows: list[int], bad_indexes: list[int]
) -> None:
    table = FakeTable()
    rejected = insert_bisecting(rows, "t:0:0-9", table.insert)
    assert [r.index for r in rejected] == bad_indexes
    assert sorted(table.rows) == sorted(r for r in rows if r >= 0)
    assert all("violates" in r.error and r.code == 469 for r in rejected)


def test_a_replay_repeats_the_same_slices_and_writes_nothing_twice() -> None:
    table = FakeTable()
    rows = [1, -2, 3, 4, -5, 6, 7, 8]
    first = insert_bisecting(rows, "t:0:0-7", table.insert)
    written = list(table.rows)
    again = insert_bisecting(rows, "t:0:0-7", table.insert)
    assert table.rows == written and first == again


def test_other_errors_propagate() -> None:
    def broken(rows: Sequence[int], token: str) -> None:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError):
        insert_bisecting([1, 2], "t", broken)
    assert insert_bisecting([], "t", broken) == []
