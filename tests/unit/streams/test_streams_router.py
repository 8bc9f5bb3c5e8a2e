"""The route step: decode, time sanity, dedup, consent, minimisation, redaction."""

from __future__ import annotations

from typing import Any

import pytest

from backends.dlq_limit import DlqLimit, DlqLimitExceeded, DlqPolicy
from privacy.consent import ConsentPolicy
from privacy.scope import Scope
from schemas.codec import encode_event
from streams.dedup import DeviceSeen
from streams.router import RawMessage, route_batch
from tests.unit.privacy.privacy_events import ORG, SUBJECT, TUESDAY_10_UTC, make_event

NOW = TUESDAY_10_UTC + 60_000_000
ALL = frozenset(Scope)


def policy(scopes: frozenset[Scope] = ALL, version: int = 3) -> ConsentPolicy:
    return ConsentPolicy(
        subject_id=SUBJECT,
        org_id=ORG,
        version=version,
        scopes=scopes,
        changed_by="admin",
        changed_at=TUESDAY_10_UTC - 10,
        reason=None,
    )


def raw(event: dict[str, Any] | bytes, offset: int = 0) -> RawMessage:
    value = event if isinstance(event, bytes) else encode_event(event)
    return RawMessage(b"dev-1", value, "capture.events", 0, offset)


def route(
    msgs: list[RawMessage],
    pol: ConsentPolicy | None = None,
    state: dict[str, DeviceSeen] | None = None,
) -> Any:
    store = state if state is not None else {}
    return route_batch(
        msgs,
        now=NOW,
        consent=lambda s: pol,
        hours=lambda o: None,
        seen=lambda d: store.setdefault(d, DeviceSeen()),
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "undecodable"),
        (b"\xc3\x01" + b"\x00" * 8 + b"junk", "unknown_schema"),
        (b"not avro at all", "undecodable"),
    ],
)
def test_bad_bytes_become_typed_dead_letters(value: bytes, reason: str) -> None:
    out = route([raw(value, offset=42)], policy())
    assert out.clean == []
    [dead] = out.dead
    assert dead.reason == reason
    headers = dict(dead.headers())
    assert headers["reason"] == reason.encode()
    assert headers["original_offset"] == b"42" and headers["original_topic"] == b"capture.events"
    assert dead.value == value
    assert out.outcomes == [True]


@pytest.mark.parametrize("shift_s", [-8 * 24 * 3600, 3600, 10 * 365 * 24 * 3600])
def test_impossible_timestamps_are_dead_lettered(shift_s: int) -> None:
    out = route([raw(make_event("MouseClick", ts=NOW + shift_s * 1_000_000))], policy())
    assert [d.reason for d in out.dead] == ["impossible_timestamp"]


def test_no_consent_drops_everything_and_counts_it() -> None:
    out = route([raw(make_event("KeyInput")), raw(make_event("MouseClick", seq=2))], None)
    assert out.clean == [] and out.dead == []
    assert out.drops == {"no_consent": 2}
    assert out.outcomes == [False, False]


def test_missing_content_scope_removes_content_but_keeps_counts() -> None:
    out = route([raw(make_event("KeyInput"))], policy(frozenset({Scope.ACTIVITY_METADATA})))
    [event] = out.clean
    assert event["payload"]["text"] in (None, "") and event["payload"]["count"] == 5
    assert event["consent_version"] == 3


def test_secrets_are_redacted_with_a_trail() -> None:
    event = make_event(
        "TerminalCommand",
        payload={
            "type": "TerminalCommand",
            "command": "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
            "exit_code": 0,
            "cwd_hash": "c",
        },
    )
    out = route([raw(event)], policy())
    [clean] = out.clean
    assert "AKIA" not in clean["payload"]["command"]
    assert "<SECRET:aws_access_key>" in clean["payload"]["command"]
    assert "aws_access_key" in clean["redactions"]
    assert out.redactions["aws_access_key"] == 1


def test_duplicates_pass_once_even_across_batches() -> None:
    state: dict[str, DeviceSeen] = {}
    e1, e2 = make_event("MouseClick", seq=1), make_event("MouseClick", seq=2, event_id="b" * 36)
    first = route([raw(e1), raw(e2), raw(e1)], policy(), state)
    assert len(first.clean) == 2 and first.drops["duplicate"] == 1
    # state round-trips through the Faust table's JSON form
    state = {k: DeviceSeen.from_dict(v.to_dict()) for k, v in state.items()}
    again = route([raw(e2), raw(make_event("MouseClick", seq=3))], policy(), state)
    assert [e["seq"] for e in again.clean] == [3] and again.drops["duplicate"] == 1
    assert set(again.touched) == {"dev-1"}


def test_dlq_limit_stops_on_consecutive_rejects() -> None:
    limit = DlqPolicy(DlqLimit(max_consecutive=5, min_observed=10_000))
    for _ in range(4):
        limit.observe(True)
    limit.observe(False)  # resets the run
    for _ in range(4):
        limit.observe(True)
    with pytest.raises(DlqLimitExceeded, match="5 consecutive"):
        limit.observe(True)


def test_dlq_limit_stops_on_ratio_over_window() -> None:
    limit = DlqPolicy(
        DlqLimit(max_invalid_ratio=0.2, max_consecutive=10**9, window=100, min_observed=50)
    )
    for i in range(300):  # 10% bad: fine
        limit.observe(i % 10 == 0)
    with pytest.raises(DlqLimitExceeded, match="ratio"):
        for i in range(100):  # 1 in 3 bad: over 0.2 within the window
            limit.observe(i % 3 == 0)


SEC = 1_000_000


@pytest.mark.parametrize(
    ("since_start_s", "since_input_s", "may_close"),
    [
        (10, 1, False),  # just (re)started: the backlog may still be on its way
        (100, 1, True),  # input flows: a device without events really is quiet
        (100, 50, False),  # all input stopped a while ago: an outage or a pause
        (200, 80, False),
        (400, 106, True),  # silent for 3 periods: the working day is over
    ],
)
def test_timer_gate(since_start_s: int, since_input_s: int, may_close: bool) -> None:
    from streams.activity import TimerGate

    now = 10_000 * SEC
    gate = TimerGate(started=now - since_start_s * SEC, period=35 * SEC)
    gate.last_input = now - since_input_s * SEC
    assert gate.may_close(now) is may_close


def test_timer_gate_waits_a_period_after_a_rebalance() -> None:
    from streams.activity import TimerGate

    now = 10_000 * SEC
    gate = TimerGate(started=now - 500 * SEC, period=35 * SEC)
    gate.last_input = now - 1 * SEC
    assert gate.may_close(now)
    gate.restart(now)  # partitions of a killed worker, with their backlog, arrive
    assert not gate.may_close(now + 30 * SEC)
    gate.last_input = now + 34 * SEC
    assert gate.may_close(now + 36 * SEC)


def test_capture_hours_from_settings_drop_events_outside_them() -> None:
    from candor.settings import Settings, replace
    from streams.app import worker_config

    # TUESDAY_10_UTC is 11:00 in Paris: inside 08:00-19:00, outside 12:00-13:00
    hours_12_13 = {"weekdays": ["tue"], "start": "12:00", "end": "13:00", "tz": "Europe/Paris"}
    settings = replace(Settings(), privacy={"capture_hours": [{"org_id": ORG, **hours_12_13}]})
    hours = {h.org_id: h for h in worker_config(settings).capture_hours}
    out = route_batch(
        [raw(make_event("MouseClick"))],
        now=NOW,
        consent=lambda s: policy(),
        hours=hours.get,
        seen=lambda d: DeviceSeen(),
    )
    assert out.clean == [] and out.drops == {"outside_capture_hours": 1}
    settings.privacy.capture_hours[0]["start"] = "08:00"
    settings.privacy.capture_hours[0]["end"] = "19:00"
    hours = {h.org_id: h for h in worker_config(settings).capture_hours}
    out = route_batch(
        [raw(make_event("MouseClick"))],
        now=NOW,
        consent=lambda s: policy(),
        hours=hours.get,
        seen=lambda d: DeviceSeen(),
    )
    assert len(out.clean) == 1
