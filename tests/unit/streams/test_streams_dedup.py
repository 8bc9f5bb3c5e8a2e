"""The per-device seq ledger against a plain-set model of what it must answer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.dedup import DEDUP_WINDOW, DeviceSeen


class SetModel:
    """Every seq passed on, and the rule for ones too old to tell."""

    def __init__(self) -> None:
        self.passed: set[int] = set()
        self.max_seq = -1

    def seen(self, seq: int) -> bool:
        if seq in self.passed or seq < self.max_seq - DEDUP_WINDOW:
            return True
        self.passed.add(seq)
        self.max_seq = max(self.max_seq, seq)
        return False


def _check_shape(ledger: DeviceSeen) -> None:
    for lo, hi in ledger.ranges:
        assert lo <= hi
    for (_, hi), (lo, _) in itertools.pairwise(ledger.ranges):
        assert hi + 1 < lo, ledger.ranges  # disjoint and not touching
    if ledger.ranges:
        assert ledger.ranges[-1][1] == ledger.max_seq
        assert ledger.ranges[0][0] >= ledger.max_seq - DEDUP_WINDOW


@pytest.mark.parametrize(
    ("seqs", "answers", "ranges"),
    [
        ([0, 1, 2, 3], [False] * 4, [[0, 3]]),
        ([0, 1, 1, 2, 0], [False, False, True, False, True], [[0, 2]]),
        ([5, 3, 4, 3], [False, False, False, True], [[3, 5]]),
        ([0, 2, 4, 3, 1], [False] * 5, [[0, 4]]),
        ([10, 12, 11], [False, False, False], [[10, 12]]),
        ([0, 10, 5, 6, 4], [False] * 5, [[0, 0], [4, 6], [10, 10]]),
    ],
)
def test_answers_and_ranges(seqs: list[int], answers: list[bool], ranges: list[list[int]]) -> None:
    ledger = DeviceSeen()
    assert [ledger.seen(s) for s in seqs] == answers
    assert ledger.ranges == ranges


def test_in_order_stream_stays_one_range() -> None:
    ledger = DeviceSeen()
    assert not any(ledger.seen(s) for s in range(50_000))
    assert ledger.ranges == [[50_000 - 1 - DEDUP_WINDOW, 49_999]]
    assert ledger.seen(49_999) and ledger.seen(10)


def test_too_old_counts_as_seen() -> None:
    ledger = DeviceSeen()
    ledger.seen(DEDUP_WINDOW + 100)
    assert ledger.seen(50)
    assert not ledger.seen(200)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=3 * DEDUP_WINDOW), max_size=300),
    st.integers(min_value=0, max_value=2 * DEDUP_WINDOW),
)
def test_matches_set_model(jumps: list[int], spread: int) -> None:
    ledger, model = DeviceSeen(), SetModel()
    for j in jumps:
        seq = j % (spread + 1) + (j // 7)  # mostly near each other, sometimes far
        assert ledger.seen(seq) == model.seen(seq), seq
        _check_shape(ledger)
    restored = DeviceSeen.from_dict(ledger.to_dict())
    assert restored == ledger


@given(st.sets(st.integers(min_value=0, max_value=500)))
def test_reads_the_earlier_listed_form(recent: set[int]) -> None:
    max_seq = max(recent, default=-1)
    ledger = DeviceSeen.from_dict({"max_seq": max_seq, "recent": sorted(recent)})
    for seq in range(0, 502):
        assert ledger.seen(seq) == (seq in recent)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=3 * DEDUP_WINDOW), max_size=60),
    st.integers(min_value=-3, max_value=2 * DEDUP_WINDOW),
    st.lists(st.integers(min_value=1, max_value=2 * DEDUP_WINDOW), max_size=12),
)
def test_adding_a_run_of_new_seqs_records_what_seeing_each_would(
    before: list[int], first: int, steps: list[int]
) -> None:
    # a strictly increasing run (what `add_new` takes), usually above the highest
    # seq so far; when it is not, `add_new` must still record what `seen` would
    one_by_one = DeviceSeen()
    for seq in before:
        one_by_one.seen(seq)
    at_once = DeviceSeen.from_dict(one_by_one.to_dict())
    seqs = [one_by_one.max_seq + first]
    for step in steps:
        seqs.append(seqs[-1] + step)
    answers = [one_by_one.seen(s) for s in seqs]
    if first > 0:
        assert not any(answers)
    at_once.add_new(seqs)
    assert at_once == one_by_one
    _check_shape(at_once)
