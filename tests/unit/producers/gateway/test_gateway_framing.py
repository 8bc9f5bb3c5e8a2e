"""The Avro batch framing: 4-byte big-endian length + message, repeated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.gateway.errors import BadRequest
from producers.gateway.framing import frame_messages, split_frames


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20))
def test_framing_round_trips(messages: list[bytes]) -> None:
    assert split_frames(frame_messages(messages), max_frames=20) == messages


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00\x00\x00", "bad_framing"),  # truncated length
        (b"\x00\x00\x00\x00", "bad_framing"),  # zero length
        (b"\x00\x00\x00\x05abc", "bad_framing"),  # frame past the end
        (b"\x00\x00\x00\x01a\x00\x00", "bad_framing"),  # good frame, then garbage
        (b"\xff\xff\xff\xffa", "bad_framing"),  # absurd length
        (b"\x00\x00\x00\x01a" * 4, "too_many_events"),
    ],
)
def test_broken_framing_refuses_the_whole_body(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest) as err:
        split_frames(body, max_frames=3)
    assert err.value.reason == reason


@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=5), st.data())
def test_any_cut_inside_the_last_frame_is_bad_framing(
    messages: list[bytes], data: st.DataObject
) -> None:
    body = frame_messages(messages)
    last_start = len(body) - len(messages[-1]) - 4
    cut = data.draw(st.integers(last_start + 1, len(body) - 1))
    with pytest.raises(BadRequest):
        split_frames(body[:cut], max_frames=10)


def test_empty_messages_cannot_be_framed() -> None:
    with pytest.raises(ValueError):
        frame_messages([b"ok", b""])
