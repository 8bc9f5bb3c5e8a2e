"""The disk spool: order, acks across restarts, torn tails, bounds, segment deletion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.sdk.errors import SpoolCorrupt, SpoolError, SpoolFull, SpoolLocked
from producers.sdk.spool import Spool, SpoolRecord
from producers.sdk.spool_frame import decode_body, encode_frame


def records(count: int, size: int = 10, prefix: str = "r") -> list[SpoolRecord]:
    return [
        SpoolRecord(value=f"{prefix}{i}".encode().ljust(size, b"."), key=b"dev-1")
        for i in range(count)
    ]


FRAME = len(encode_frame(records(1)[0]))  # 33 bytes on disk per test record


def values(spool: Spool) -> list[bytes]:
    return [record.value for _position, record in spool.replay()]


def segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("segment-*.log"))


@pytest.mark.parametrize(
    "record",
    [
        SpoolRecord(value=b"v"),
        SpoolRecord(value=b"", key=None),
        SpoolRecord(value=b"\x00\xff" * 3000, key=b""),
        SpoolRecord(value=b"v", key=b"k", headers=(("a", b"1"), ("b", None), ("\u00e9", b""))),
    ],
)
def test_frame_round_trips_every_field(record: SpoolRecord) -> None:
    frame = encode_frame(record)
    assert decode_body(frame[8:]) == record


@pytest.mark.parametrize("fsync", ["always", "segment", "never"])
@pytest.mark.parametrize("segment_bytes", [1, 64, 1 << 20])
def test_replay_returns_records_in_append_order_across_segments_and_restarts(
    tmp_path: Path, fsync: str, segment_bytes: int
) -> None:
    batch = records(25)
    with Spool(tmp_path, segment_bytes=segment_bytes, fsync=fsync) as spool:  # type: ignore[arg-type]
        spool.append(batch[:10])
        for record in batch[10:]:
            spool.append([record])
        assert spool.depth == 25
        assert values(spool) == [r.value for r in batch]
    with Spool(tmp_path, segment_bytes=segment_bytes) as spool:
        assert spool.depth == 25
        assert [r for _p, r in spool.replay()] == batch


@pytest.mark.parametrize("acked", [0, 1, 7, 19, 20])
@pytest.mark.parametrize("segment_bytes", [40, 1 << 20])
def test_replay_after_restart_resumes_after_the_last_acked_record(
    tmp_path: Path, acked: int, segment_bytes: int
) -> None:
    batch = records(20)
    with Spool(tmp_path, segment_bytes=segment_bytes) as spool:
        spool.append(batch)
        positions = [position for position, _record in spool.replay()]
        if acked:
            spool.ack(positions[acked - 1])
        assert spool.depth == 20 - acked
    with Spool(tmp_path, segment_bytes=segment_bytes) as spool:
        assert spool.depth == 20 - acked
        assert values(spool) == [r.value for r in batch[acked:]]


def test_replay_after_a_position_skips_to_it_and_sees_later_appends(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=50) as spool:
        spool.append(records(6))
        third = list(spool.replay())[2][0]
        spool.append(records(2, prefix="late"))
        assert [r.value[:5] for _p, r in spool.replay(third)] == [
            b"r3...",
            b"r4...",
            b"r5...",
            b"late0",
            b"late1",
        ]


def test_acking_deletes_segments_that_hold_only_acked_records(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=1) as spool:  # one record per segment
        spool.append(records(1))
        spool.append(records(1, prefix="b"))
        spool.append(records(1, prefix="c"))
        assert len(segments(tmp_path)) == 3
        first, second, _third = (p for p, _r in spool.replay())
        spool.ack(first)
        assert len(segments(tmp_path)) == 2
        spool.ack(second)
        assert len(segments(tmp_path)) == 1
        assert values(spool) == [b"c0........"]


def test_acking_everything_empties_the_disk_and_keeps_counting(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=64) as spool:
        end = spool.append(records(10))
        spool.ack(end)
        assert (spool.depth, spool.disk_bytes, segments(tmp_path)) == (0, 0, [])
        spool.append(records(2, prefix="n"))
        assert values(spool) == [b"n0........", b"n1........"]
    with Spool(tmp_path) as spool:
        assert spool.depth == 2
        assert spool.end.ordinal == 12


def test_ack_before_the_cursor_is_a_no_op_and_beyond_the_end_an_error(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(records(3))
        first, second, _ = (p for p, _r in spool.replay())
        spool.ack(second)
        spool.ack(first)
        assert spool.depth == 1
        with pytest.raises(SpoolError):
            spool.ack(second._replace(ordinal=99))


def _cut_tail(path: Path, n: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-n])


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _append_garbage(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\x00\x00\x01\x00garbage")


def _huge_length(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\x7f\xff\xff\xff\x00\x00\x00\x00")


@pytest.mark.parametrize(
    "tear",
    [
        pytest.param(lambda p: _cut_tail(p, 1), id="cut-inside-body"),
        pytest.param(lambda p: _cut_tail(p, 20), id="cut-inside-header"),
        pytest.param(_flip_last_byte, id="bad-crc"),
        pytest.param(_append_garbage, id="garbage-after-last-frame"),
        pytest.param(_huge_length, id="impossible-length"),
    ],
)
def test_a_torn_tail_is_truncated_on_open_and_earlier_records_survive(
    tmp_path: Path, tear: object
) -> None:
    with Spool(tmp_path) as spool:
        spool.append(records(5))
        spool.append([SpoolRecord(value=b"last-record-xx")])
    (segment,) = tmp_path.glob("segment-*.log")
    tear(segment)  # type: ignore[operator]
    with Spool(tmp_path) as spool:
        assert spool.recovered_bytes > 0
        kept = values(spool)
        assert kept[:5] == [r.value for r in records(5)]
        assert len(kept) in (5, 6)
        spool.append([SpoolRecord(value=b"after-crash")])
        assert values(spool)[-1] == b"after-crash"
    with Spool(tmp_path) as spool:
        assert spool.recovered_bytes == 0
        assert values(spool)[-1] == b"after-crash"


def test_a_torn_record_past_the_cursor_leaves_the_cursor_on_real_data(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        end = spool.append(records(3))
        spool.append(records(1, prefix="x"))
        spool.ack(end)
    (segment,) = tmp_path.glob("segment-*.log")
    _cut_tail(segment, 3)
    with Spool(tmp_path) as spool:
        assert spool.depth == 0
        spool.append(records(1, prefix="y"))
        assert values(spool) == [b"y0........"]


@pytest.mark.parametrize(
    "max_bytes,fits", [(FRAME * 3 + 5, 3), (FRAME * 9, 9), (FRAME, 1), (FRAME - 1, 0)]
)
def test_append_over_max_bytes_raises_spool_full_and_writes_nothing(
    tmp_path: Path, max_bytes: int, fits: int
) -> None:
    with Spool(tmp_path, max_bytes=max_bytes) as spool:
        for record in records(fits):
            spool.append([record])
        before = (spool.depth, spool.disk_bytes)
        with pytest.raises(SpoolFull) as caught:
            spool.append(records(1))
        assert caught.value.available == max_bytes - FRAME * fits
        assert (spool.depth, spool.disk_bytes) == before
        assert len(values(spool)) == fits


def test_acked_space_is_reclaimed_for_new_appends(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=FRAME * 4, segment_bytes=FRAME * 2) as spool:
        batch = records(4)
        spool.append(batch[:2])
        spool.append(batch[2:])  # rolls to a second segment
        with pytest.raises(SpoolFull):
            spool.append(records(1, prefix="z"))
        second = list(spool.replay())[1][0]
        spool.ack(second)  # the first segment is deleted
        spool.append(records(2, prefix="z"))
        assert [v[:2] for v in values(spool)] == [b"r2", b"r3", b"z0", b"z1"]


def test_a_second_open_of_the_same_directory_is_refused_until_closed(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    with pytest.raises(SpoolLocked):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()


def test_a_damaged_cursor_file_is_reported(tmp_path: Path) -> None:
    Spool(tmp_path).close()
    (tmp_path / "cursor").write_text("{not json")
    with pytest.raises(SpoolCorrupt):
        Spool(tmp_path)


def test_the_cursor_file_is_replaced_atomically(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(records(3))
        position = list(spool.replay())[1][0]
        spool.ack(position)
    assert json.loads((tmp_path / "cursor").read_text())["ordinal"] == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_a_closed_spool_refuses_work(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.close()
    spool.close()
    with pytest.raises(SpoolError):
        spool.append(records(1))


# A model check: any sequence of appends, acks and restarts replays exactly the
# appended-but-unacked records, in order.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 4)),
        st.tuples(st.just("ack"), st.integers(0, 5)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=operations)
def test_spool_matches_a_list_model(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:  # type: ignore[type-arg]
    directory = tmp_path_factory.mktemp("model")
    model: list[bytes] = []
    counter = 0
    spool = Spool(directory, segment_bytes=60, fsync="never")
    try:
        for op, n in ops:
            if op == "append":
                batch = [SpoolRecord(value=f"v{counter + i}".encode()) for i in range(n)]
                counter += n
                spool.append(batch)
                model += [r.value for r in batch]
            elif op == "ack" and model:
                take = min(n, len(model))
                if take:
                    position = list(spool.replay())[take - 1][0]
                    spool.ack(position)
                    model = model[take:]
            else:
                spool.close()
                spool = Spool(directory, segment_bytes=60, fsync="never")
            assert spool.depth == len(model)
            assert values(spool) == model
    finally:
        spool.close()
