"""Batch boundaries, dedup tokens and the replay intent."""

from __future__ import annotations

import pytest

from sinks.batching import Batch, Batcher, dedup_token, intent_metadata, parse_intent


def _feed(b: Batcher[str], partition: int, offsets: range, now: float = 0.0) -> list[Batch[str]]:
    out: list[Batch[str]] = []
    for o in offsets:
        out += b.add(partition, o, f"m{o}", now)
    return out


def test_size_cuts_full_batches_per_partition_with_their_tokens() -> None:
    b: Batcher[str] = Batcher("t", max_rows=3, max_age=10)
    done = _feed(b, 0, range(0, 7)) + _feed(b, 5, range(100, 103))
    assert [(x.partition, x.first, x.last, x.reason) for x in done] == [
        (0, 0, 2, "size"),
        (0, 3, 5, "size"),
        (5, 100, 102, "size"),
    ]
    assert [x.token for x in done] == ["t:0:0-2", "t:0:3-5", "t:5:100-102"]
    assert done[0].items == ("m0", "m1", "m2") and done[0].commit_offset == 3
    assert b.buffered() == 1


@pytest.mark.parametrize(("now", "due"), [(0.5, []), (1.0, [(0, 0, 1)]), (9.0, [(0, 0, 1)])])
def test_age_cuts_a_partial_batch(now: float, due: list[tuple[int, int, int]]) -> None:
    b: Batcher[str] = Batcher("t", max_rows=100, max_age=1.0)
    _feed(b, 0, range(2), now=0.0)
    assert [(x.partition, x.first, x.last) for x in b.due(now)] == due


def test_an_age_cut_takes_every_unpinned_partition_along_so_they_share_a_round() -> None:
    b: Batcher[str] = Batcher("t", max_rows=100, max_age=1.0)
    _feed(b, 0, range(0, 3), now=0.0)
    _feed(b, 1, range(10, 12), now=0.6)
    b.pin(2, 25)
    _feed(b, 2, range(20, 23), now=0.0)  # pinned: its replay waits for offset 25
    assert b.due(0.9) == []  # none is old enough yet
    cut = b.due(1.0)
    assert [(x.partition, x.first, x.last, x.reason) for x in cut] == [
        (0, 0, 2, "age"),
        (1, 10, 11, "age"),
    ]
    assert b.buffered() == 3 and b.due(5.0) == []  # the pinned batch stays


def test_a_replay_pinned_by_the_intent_forms_the_same_batch_as_before_the_crash() -> None:
    before: Batcher[str] = Batcher("t", max_rows=100, max_age=1.0)
    _feed(before, 2, range(10, 15), now=0.0)
    (original,) = before.due(1.0)  # an age cut: 10-14
    committed = original.first
    last = parse_intent(intent_metadata(original), committed)
    assert last == 14

    after: Batcher[str] = Batcher("t", max_rows=3, max_age=0.001)  # even with other settings
    after.pin(2, last)
    replay = _feed(after, 2, range(10, 13), now=0.0)
    assert replay == [] and after.due(100.0) == []  # neither size nor age cut while pinned
    replay = _feed(after, 2, range(13, 20), now=0.0)
    assert replay[0].token == original.token == "t:2:10-14"
    assert [x.token for x in replay[1:]] == ["t:2:15-17"]  # then back to normal cuts


def test_a_pinned_batch_whose_last_offset_vanished_is_cut_before_the_next_message() -> None:
    b: Batcher[str] = Batcher("t", max_rows=100, max_age=1.0)
    b.pin(0, 5)
    done = _feed(b, 0, range(3, 5)) + b.add(0, 9, "m9", 0.0)
    assert [(x.first, x.last, x.reason) for x in done] == [(3, 4, "pinned")]
    assert [(x.first, x.last) for x in b.due(5.0)] == [(9, 9)]


@pytest.mark.parametrize(
    ("metadata", "committed", "expected"),
    [
        ("candor-sink:v1:10-14", 10, 14),
        ("candor-sink:v1:10-14", 15, None),  # the batch was committed since
        ("candor-sink:v1:10-9", 10, None),
        ("", 10, None),
        (None, 10, None),
        ("someone-else", 10, None),
        ("candor-sink:v1:10-14", -1001, None),  # no committed offset
    ],
)
def test_parse_intent(metadata: str | None, committed: int, expected: int | None) -> None:
    assert parse_intent(metadata, committed) == expected


def test_dropping_a_revoked_partition_forgets_its_buffer() -> None:
    b: Batcher[str] = Batcher("t", max_rows=100, max_age=1.0)
    _feed(b, 1, range(4))
    assert b.drop(1) == 4 and b.due(10.0) == [] and b.drop(7) == 0
    assert dedup_token("capture.clean", 3, 0, 9) == "capture.clean:3:0-9"


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher("t", max_rows=0)


def test_tokens_carry_the_topic_id_once_known() -> None:
    # A topic created anew restarts at offset 0: its batches must not carry the
    # tokens of the old topic's batches, which ClickHouse would drop as replays.
    assert dedup_token("t", 3, 0, 9) == "t:3:0-9"
    assert dedup_token("t", 3, 0, 9, "Abc/x1") == "t@Abc/x1:3:0-9"
    batcher: Batcher[str] = Batcher("t", max_rows=2)
    batcher.topic_id = "id1"
    done = batcher.add(0, 0, "a", 0.0) + batcher.add(0, 1, "b", 0.0)
    assert [b.token for b in done] == ["t@id1:0:0-1"]
