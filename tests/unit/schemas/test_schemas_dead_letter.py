"""Dead letters: the headers of a batch's lost end, and a value too large to carry."""

from __future__ import annotations

from schemas.dead_letter import MAX_VALUE_BYTES, DeadLetter


def test_a_lost_end_names_its_first_index_count_and_seqs() -> None:
    letter = DeadLetter(
        "truncated_batch",
        "cut",
        "capture.events",
        2,
        40,
        b"dev",
        b"record",
        batch_id="b-1",
        lost_from=3,
        lost_count=2,
        lost_seqs=(14, 15),
    )
    headers = dict(letter.headers())
    assert (headers["batch_id"], headers["lost_from_index"]) == (b"b-1", b"3")
    assert (headers["lost_count"], headers["lost_seqs"]) == (b"2", b"14-15")
    assert "event_index" not in headers and "value_bytes" not in headers


def test_a_value_over_the_limit_is_not_carried_but_its_size_is() -> None:
    small = DeadLetter.capped("r", "e", "t", 0, 1, None, b"x" * MAX_VALUE_BYTES)
    assert small.value == b"x" * MAX_VALUE_BYTES and small.value_bytes is None
    large = DeadLetter.capped("r", "e", "t", 0, 1, None, b"x" * (MAX_VALUE_BYTES + 1))
    assert large.value is None and large.value_bytes == MAX_VALUE_BYTES + 1
    assert dict(large.headers())["value_bytes"] == str(MAX_VALUE_BYTES + 1).encode()
    assert "not kept" in large.error
