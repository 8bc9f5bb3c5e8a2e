"""The writer: dedup token on every insert, retry/backoff, classification, bisection."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from sinks.errors import FailureKind, FatalSinkError, RetriesExhausted, classify
from sinks.writer import RetryPolicy, TableWriter


class FakeClient:
    """Fails the first ``failures`` inserts with ``error``, then refuses rows with x < 0."""

    def __init__(self, error: Exception | None = None, failures: int = 0) -> None:
        self.error = error
        self.failures = failures
        self.inserts: list[tuple[list[Any], str]] = []
        self.described = 0  # how many times the column types were asked

    def create_insert_context(
        self, table: str, column_names: list[str], settings: dict[str, Any] | None = None
    ) -> SimpleNamespace:
        self.described += 1
        return SimpleNamespace(column_types=[f"type of {c}" for c in column_names])

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: list[str],
        column_types: list[str],
        settings: dict[str, Any],
        column_oriented: bool = False,
    ) -> None:
        # the writer inserts columns: one list per column, as clickhouse-connect takes them,
        # with the column types it asked once (no DESCRIBE TABLE per insert)
        assert column_oriented and len(data) == len(column_names)
        assert column_types == [f"type of {c}" for c in column_names]
        rows = list(zip(*data, strict=True))
        if self.failures:
            self.failures -= 1
            assert self.error is not None
            raise self.error
        if any(r[0] < 0 for r in rows):
            raise DatabaseError("Code: 469. DB::Exception: Constraint `c` is violated", code=469)
        self.inserts.append((list(rows), settings["insert_deduplication_token"]))


def _writer(client: FakeClient, sleeps: list[float], attempts: int = 5) -> TableWriter:
    return TableWriter(
        client,  # type: ignore[arg-type]
        "events",
        ["x"],
        retry=RetryPolicy(initial=0.1, factor=2, max_delay=0.3, max_attempts=attempts),
        sleep=sleeps.append,
    )


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection refused"),
        DatabaseError("Code: 252. Too many parts", code=252),
        DatabaseError("Code: 209. Timeout", code=209),
    ],
)
def test_transient_failures_are_retried_with_the_same_token_and_backoff(error: Exception) -> None:
    client, sleeps = FakeClient(error, failures=3), list[float]()
    result = _writer(client, sleeps).write([(1,), (2,)], "t:0:5-6")
    assert client.inserts == [([(1,), (2,)], "t:0:5-6")]
    assert sleeps == [0.1, 0.2, 0.3] and result.retries == 3 and result.written == 2


def test_column_types_are_asked_once_and_again_after_a_failed_insert() -> None:
    client, sleeps = FakeClient(OperationalError("connection reset"), failures=1), list[float]()
    writer = _writer(client, sleeps)
    writer.write([(1,)], "t:0:0-0")  # asked, failed, asked again, inserted
    assert client.described == 2
    writer.write([(2,)], "t:0:1-1")
    writer.write([(3,), (4,)], "t:0:2-3")
    assert client.described == 2
    assert [token for _, token in client.inserts] == ["t:0:0-0", "t:0:1-1", "t:0:2-3"]


def test_retries_end_with_a_typed_error() -> None:
    with pytest.raises(RetriesExhausted):
        _writer(FakeClient(OperationalError("down"), failures=99), [], attempts=3).write(
            [(1,)], "t:0:0-0"
        )


@pytest.mark.parametrize("code", [60, 81, 516, 497])
def test_permanent_table_or_auth_problems_stop_the_sink(code: int) -> None:
    client = FakeClient(DatabaseError(f"Code: {code}.", code=code), failures=1)
    with pytest.raises(FatalSinkError) as info:
        _writer(client, []).write([(1,)], "t:0:0-0")
    assert info.value.code == code and not isinstance(info.value, RetriesExhausted)


def test_refused_rows_come_back_with_the_server_error_and_the_rest_is_written() -> None:
    client = FakeClient()
    result = _writer(client, []).write([(1,), (-2,), (3,), (4,)], "t:0:0-3")
    assert [r.index for r in result.rejected] == [1]
    assert "violated" in result.rejected[0].error
    assert sorted(r for rows, _ in client.inserts for r in rows) == [(1,), (3,), (4,)]
    assert all(token.startswith("t:0:0-3#") for _, token in client.inserts)


def test_values_the_driver_cannot_serialise_are_row_problems() -> None:
    client = FakeClient(DataError("Unable to create native array for column `x`"), failures=1)
    result = _writer(client, []).write([(1,)], "t:0:0-0")
    assert [r.index for r in result.rejected] == [0]


@pytest.mark.parametrize(
    ("code", "answered", "client_side", "kind"),
    [
        (None, False, False, FailureKind.TRANSIENT),
        (None, True, False, FailureKind.FATAL),
        (None, False, True, FailureKind.ROWS),
        (252, True, False, FailureKind.TRANSIENT),
        (469, True, False, FailureKind.ROWS),
        (60, True, False, FailureKind.FATAL),
        (123456, True, False, FailureKind.FATAL),
    ],
)
def test_classify(code: int | None, answered: bool, client_side: bool, kind: FailureKind) -> None:
    assert classify(code, server_answered=answered, client_side=client_side) is kind
