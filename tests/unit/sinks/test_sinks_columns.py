"""Columns: a batch built one list per column, sliced for bisection, and the
`events` rows of a CleanBatch built at once equal to its rows one by one."""

from __future__ import annotations

from typing import Any

import pytest

from privacy.content_keys import keep_content
from schemas.codec import encode, encode_event
from schemas.errors import UnknownPayloadType
from sinks.bisection import insert_bisecting
from sinks.columns import Columns
from sinks.errors import RowsRejected
from sinks.routes import Unmappable, map_into, route_for
from sinks.rows import event_row, event_rows
from tests.unit.sinks.sinks_samples import PAYLOADS, event


def test_columns_hold_rows_as_one_list_per_column_and_slice_like_rows() -> None:
    cols = Columns.from_rows([(1, "a"), (2, "b"), (3, "c")], 2)
    assert cols.lists == [[1, 2, 3], ["a", "b", "c"]]
    assert len(cols) == 3 and cols[1] == (2, "b") and cols.row(-1) == (3, "c")
    assert cols[1:] == Columns(2, [[2, 3], ["b", "c"]])
    assert list(cols) == [(1, "a"), (2, "b"), (3, "c")]
    cols.extend([[4, 5], ["d", "e"]])
    assert len(cols) == 5 and cols[4] == (5, "e")
    with pytest.raises(ValueError):
        cols.extend([[6], ["f", "g"]])  # columns of different lengths: nothing added
    with pytest.raises(ValueError):
        cols.add_row((7,))
    assert len(cols) == 5 and len(Columns(2)) == 0


def test_rows_added_one_by_one_keep_their_place_among_columns_added_at_once() -> None:
    cols = Columns(2)
    cols.add_row((1, "a"))
    cols.extend([[2, 3], ["b", "c"]])
    cols.add_row((4, "d"))
    assert len(cols) == 4
    assert cols.lists == [[1, 2, 3, 4], ["a", "b", "c", "d"]]
    cols.add_row((5, "e"))
    assert cols[2:] == Columns(2, [[3, 4, 5], ["c", "d", "e"]])


def test_bisection_over_columns_finds_the_refused_row_and_writes_the_rest() -> None:
    written: list[tuple[Any, ...]] = []

    def insert(part: Columns, token: str) -> None:
        if any(x < 0 for x in part.lists[0]):
            raise RowsRejected("refused", 469)
        written.extend(part)

    cols = Columns.from_rows([(1,), (2,), (-3,), (4,), (5,)], 1)
    rejected = insert_bisecting(cols, "t:0:0-4", insert)
    assert [r.index for r in rejected] == [2]
    assert sorted(written) == [(1,), (2,), (4,), (5,)]


def test_event_rows_of_a_batch_are_its_event_rows() -> None:
    evs = [event(kind, seq=i) for i, kind in enumerate(sorted(PAYLOADS))]
    evs[2]["redactions"] = []
    evs[3].pop("received_ts", None)
    assert event_rows(evs) == [event_row(e) for e in evs]
    assert event_rows([]) == []


def test_event_rows_refuse_an_unknown_payload_type() -> None:
    evs = [event("Scroll"), event("KeyInput")]
    evs[1]["payload"] = {"type": "Telepathy"}
    with pytest.raises(UnknownPayloadType):
        event_rows(evs)


def test_rows_added_at_once_wait_as_tuples_and_refuse_a_wrong_width() -> None:
    cols = Columns(2)
    cols.add_rows([(1, "a"), (2, "b")])
    cols.extend([[3], ["c"]])
    cols.add_rows([(4, "d")])
    assert cols.lists == [[1, 2, 3, 4], ["a", "b", "c", "d"]]
    with pytest.raises(ValueError):
        cols.add_rows([(5, "e"), (6,)])
    assert len(cols) == 4


def clean_batch(evs: list[dict[str, Any]]) -> bytes:
    seqs = [e["seq"] for e in evs]
    return encode(
        "CleanBatch",
        {
            "batch_id": "b-1",
            "org_id": evs[0]["org_id"],
            "subject_id": evs[0]["subject_id"],
            "device_id": evs[0]["device_id"],
            "first_seq": min(seqs),
            "last_seq": max(seqs),
            "key_id": None,
            "content": None,
            "events": evs,
        },
    )


def test_a_clean_batch_and_a_single_event_go_into_the_same_columns() -> None:
    route = route_for("events")
    evs = [event(kind, seq=i + 1) for i, kind in enumerate(sorted(PAYLOADS))]
    single = event("Scroll", seq=50)
    cols = Columns(len(route.columns))
    stamps: list[int] = []
    args = ("capture.clean", 0, 0, keep_content)
    assert map_into(route, cols, stamps, clean_batch(evs), None, *args) == len(evs)
    assert map_into(route, cols, stamps, encode_event(single), None, *args) == 1
    assert list(cols) == [event_row(e) for e in [*evs, single]]
    assert stamps == [e["ts"] for e in [*evs, single]]


def test_a_refused_or_skipped_record_adds_no_row() -> None:
    route = route_for("events")
    cols = Columns(len(route.columns))
    cols.add_row(event_row(event("Scroll", seq=1)))
    args = ("capture.clean", 0, 0)
    with pytest.raises(Unmappable):
        map_into(route, cols, [], b"\xc3\x01garbage", None, *args, keep_content)
    erased = map_into(route, cols, [], clean_batch([event("Scroll", seq=2)]), None, *args,
                      lambda record, datum: None)  # fmt: skip
    assert erased == 0 and len(cols) == 1


def test_many_rows_keep_their_order_across_the_moves_into_the_lists() -> None:
    cols = Columns(2)
    expected: list[tuple[int, str]] = []
    for i in range(3 * Columns.WAITING_ROWS + 5):
        if i % 7 == 0:
            cols.extend([[i], [str(i)]])
        elif i % 3 == 0:
            cols.add_rows([(i, str(i))])
        else:
            cols.add_row((i, str(i)))
        expected.append((i, str(i)))
        assert len(cols) == i + 1
    assert list(cols) == expected
    assert cols.lists == [[i for i, _ in expected], [s for _, s in expected]]
