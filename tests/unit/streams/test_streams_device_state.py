"""The device table's entries: compact bytes that give back the very state, and
the JSON entries of earlier workers still read."""

from __future__ import annotations

import json

import pytest

from streams.activity import DeviceActivity
from streams.device_state import StateFormatError, decode_state, encode_state
from tests.unit.streams.device_states import CFG, IDLE, busy_device
from tests.unit.streams.streams_events import SECOND, T0, click


def test_an_entry_gives_back_the_state_and_its_future_outputs() -> None:
    state, dev = busy_device()
    assert state.session is not None and state.session.open is not None
    assert state.minutes is not None and state.minutes.windows
    assert state.actions is not None and state.actions.open is not None
    assert state.session.clock.pending  # events still wait for the watermark

    again = decode_state(encode_state(state))

    assert again.to_dict() == state.to_dict()
    later = [dev.event(T0 + 40 * SECOND, IDLE), dev.event(T0 + 200 * SECOND, click(9, 9))]
    now = T0 + 201 * SECOND
    assert again.fold(later, now, CFG) == state.fold(later, now, CFG)
    assert again.tick(now + 600 * SECOND, CFG) == state.tick(now + 600 * SECOND, CFG)
    assert again.to_dict() == state.to_dict()


def test_an_empty_or_missing_entry_is_a_new_device() -> None:
    assert decode_state(None).to_dict() == DeviceActivity().to_dict()
    assert decode_state(b"").to_dict() == DeviceActivity().to_dict()
    assert decode_state(encode_state(DeviceActivity())).to_dict() == DeviceActivity().to_dict()


def test_an_entry_is_at_most_half_the_json_the_table_held_before() -> None:
    state, _ = busy_device()
    old = json.dumps(state.to_dict()).encode()
    assert len(encode_state(state)) < 0.5 * len(old)


def test_json_entries_of_an_earlier_worker_are_read() -> None:
    # A deployment's changelog holds faust's JSON of to_dict() until each device
    # is written again; a table may still hold that dict itself.
    state, dev = busy_device()
    old = json.dumps(state.to_dict()).encode()
    from_record = decode_state(old)
    assert from_record.to_dict() == state.to_dict()
    assert decode_state(state.to_dict()).to_dict() == state.to_dict()
    later = [dev.event(T0 + 90 * SECOND, click(1, 1))]
    assert from_record.fold(later, T0 + 91 * SECOND, CFG) == state.fold(
        later, T0 + 91 * SECOND, CFG
    )


def test_buffers_that_differ_are_stored_apart() -> None:
    state, _ = busy_device()
    assert state.minutes is not None and state.session is not None
    assert state.minutes.clock.pending == state.session.clock.pending
    state.minutes.clock.pending.pop()  # as when the two floors were raised apart
    again = decode_state(encode_state(state))
    assert again.to_dict() == state.to_dict()
    assert again.minutes is not None and again.session is not None
    assert len(again.minutes.clock.pending) == len(again.session.clock.pending) - 1


def test_a_decoded_state_shares_its_ids_and_buffered_marks() -> None:
    # What keeps a recovered worker as small as one that folded the events itself.
    state, _ = busy_device()
    again = decode_state(encode_state(state))
    assert again.session is not None and again.minutes is not None and again.actions is not None
    assert again.session.subject_id is again.actions.subject_id is again.minutes.subject_id
    assert again.session.device_id is again.session.clock.pending[0].device_id
    assert again.minutes.clock.pending is not again.session.clock.pending  # two lists ...
    assert again.minutes.clock.pending[0] is again.session.clock.pending[0]  # ... one mark


def test_reducer_states_of_other_ids_keep_them() -> None:
    state, _ = busy_device()
    assert state.actions is not None
    state.actions.subject_id = "subj-2"  # not what the session says
    again = decode_state(encode_state(state))
    assert again.actions is not None and again.actions.subject_id == "subj-2"
    assert again.to_dict() == state.to_dict()


@pytest.mark.parametrize(
    "entry",
    [b"\x02[]", b"\x01[1,2", b"\x01[]", b"\x00"],
    ids=["newer version", "truncated", "wrong shape", "unknown byte"],
)
def test_an_entry_in_no_known_format_is_refused(entry: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_state(entry)
