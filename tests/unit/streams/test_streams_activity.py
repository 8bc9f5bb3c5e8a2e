"""One device's three reducers together: outputs, and the late-event side output."""

from __future__ import annotations

from typing import Any

from schemas.codec import decode, encode
from streams.activity import ActivityConfig, DeviceActivity
from streams.minutes import MinuteConfig
from streams.session import SessionConfig
from tests.unit.streams.streams_events import MINUTE, SECOND, T0, Device

CFG = ActivityConfig(
    session=SessionConfig(gap_micros=60 * SECOND, grace_micros=5 * SECOND),
    minutes=MinuteConfig(grace_micros=5 * SECOND),
)
KEY: dict[str, Any] = {
    "type": "KeyInput",
    "key": "a",
    "text": None,
    "modifiers": [],
    "is_secure_field": False,
    "count": 1,
}


def test_events_behind_the_watermark_become_late_records_of_each_stage() -> None:
    dev = Device()
    state = DeviceActivity()
    on_time = [dev.event(T0 + i * SECOND, KEY) for i in range(3)]
    far_ahead = dev.event(T0 + 10 * MINUTE, KEY)  # moves both watermarks 10 minutes on
    late = dev.event(T0 + 4 * SECOND, KEY)
    now = T0 + 10 * MINUTE + SECOND
    out = state.fold([*on_time, far_ahead, late], now, CFG)
    assert [(r["event_id"], r["stage"]) for r in out.late] == [
        (late["event_id"], "session"),
        (late["event_id"], "minutes"),
    ]
    assert out.late_count("session") == 1 and out.late_count("minutes") == 1
    record = out.late[0]
    assert (record["ts"], record["detected_at"], record["device_id"]) == (late["ts"], now, "dev-1")
    assert decode(encode("LateEvent", record)) == ("LateEvent", record)
    # the on-time events are in the session that the jump closed
    assert sum(s["event_ids_count"] for s in out.sessions) == 3


def test_in_order_events_are_never_late() -> None:
    dev = Device()
    out = DeviceActivity().fold(
        [dev.event(T0 + i * SECOND, KEY) for i in range(50)], T0 + 60 * SECOND, CFG
    )
    assert out.late == []


def test_state_round_trips_through_the_tables_json_codec() -> None:
    from faust.utils import json as faust_json

    dev = Device()
    state = DeviceActivity()
    events = [dev.event(T0 + i * SECOND // 2, KEY) for i in range(40)]
    state.fold(events, T0 + 25 * SECOND, CFG)
    assert state.minutes is not None and state.minutes.clock.pending  # marks are buffered
    stored = faust_json.loads(faust_json.dumps(state.to_dict()))
    again = DeviceActivity.from_dict(stored)
    assert again.to_dict() == state.to_dict()
    later = dev.event(T0 + 90 * SECOND, KEY)  # moves the watermarks: outputs close
    assert again.fold([later], T0 + 91 * SECOND, CFG) == state.fold([later], T0 + 91 * SECOND, CFG)


def test_rule_hits_of_merged_typing_are_counted_for_the_redactions_metric() -> None:
    # Typed text is redacted per typing action, over the merged burst (issue 18):
    # its rule hits must still reach candor_worker_redactions_total.
    from streams.keystrokes import withhold_typed

    dev = Device()
    chunks = ["write to jane.d", "oe@exam", "ple.com now"]
    typed = [
        withhold_typed(dev.event(T0 + i * SECOND, {**KEY, "key": None, "text": chunk}))
        for i, chunk in enumerate(chunks)
    ]
    click = dev.event(
        T0 + 5 * SECOND, {"type": "MouseClick", "button": "left", "x": 1, "y": 2, "double": False}
    )
    out = DeviceActivity().fold([*typed, click], T0 + 6 * SECOND, CFG)
    typing = [a for a in out.actions if a["kind"] == "typing"]
    assert typing and "jane.doe" not in (typing[0]["text"] or "")
    assert out.redactions["email"] == 1


def test_the_buffer_session_and_minutes_share_is_stored_once() -> None:
    import json

    from streams.activity import SAME_AS_SESSION

    dev = Device()
    state = DeviceActivity()
    state.fold([dev.event(T0 + i * SECOND // 4, KEY) for i in range(80)], T0 + 25 * SECOND, CFG)
    assert state.session is not None and state.minutes is not None
    assert state.session.clock.pending == state.minutes.clock.pending  # the same 20 marks
    stored = state.to_dict()
    assert stored["minutes"]["clock"]["pending"] == SAME_AS_SESSION
    twice = {**stored, "minutes": state.minutes.to_dict()}
    assert len(json.dumps(stored)) < 0.7 * len(json.dumps(twice))
    again = DeviceActivity.from_dict(json.loads(json.dumps(stored)))
    assert again.minutes is not None
    assert again.minutes.clock.pending == state.minutes.clock.pending
    later = dev.event(T0 + 90 * SECOND, KEY)
    assert again.fold([later], T0 + 91 * SECOND, CFG) == state.fold([later], T0 + 91 * SECOND, CFG)


def test_buffers_that_differ_are_stored_apart() -> None:
    dev = Device()
    state = DeviceActivity()
    state.fold([dev.event(T0 + i * SECOND // 4, KEY) for i in range(80)], T0 + 25 * SECOND, CFG)
    assert state.minutes is not None
    state.minutes.clock.pending.pop()  # as when the two floors were raised apart
    stored = state.to_dict()
    assert isinstance(stored["minutes"]["clock"]["pending"], list)
    assert DeviceActivity.from_dict(stored).to_dict() == stored
