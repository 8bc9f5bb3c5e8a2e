"""The canary's heartbeat passes the real route step with only the consent the
canary grants itself, and its age reads as a user of the gauge expects."""

from __future__ import annotations

import pytest

from candor.canary import (
    CANARY_ORG,
    CanaryIdentity,
    Sighting,
    age_seconds,
    heartbeat,
    transit_seconds,
)
from privacy.consent import ConsentPolicy, grant
from schemas.codec import decode_event, encode_event
from streams.dedup import DeviceSeen
from streams.router import RawMessage, route_batch

NOW = 1_760_000_000_000_000
S = 1_000_000
IDENTITY = CanaryIdentity(device_id="canary-host-1")


def route(
    events: list[dict[str, object]], policy: ConsentPolicy | None, seen: DeviceSeen | None = None
) -> tuple[int, dict[str, int]]:
    state = seen or DeviceSeen()
    batch = [
        RawMessage(b"canary-host-1", encode_event(e), "capture.events", 0, i)
        for i, e in enumerate(events)
    ]
    result = route_batch(
        batch,
        now=NOW + 10 * S,
        consent=lambda _s: policy,
        hours=lambda _o: None,
        seen=lambda _d: state,
    )
    assert not result.dead
    return len(result.clean), dict(result.drops)


def canary_policy() -> ConsentPolicy:
    return grant(
        None,
        ["activity_metadata"],
        "candor-canary",
        NOW,
        subject_id=IDENTITY.subject_id,
        org_id=IDENTITY.org_id,
    )


def test_heartbeat_round_trips_through_the_codec_under_the_canary_org() -> None:
    event = heartbeat(IDENTITY, NOW)
    back = decode_event(encode_event(event))
    assert back["org_id"] == CANARY_ORG
    assert back["device_id"] == "canary-host-1"
    assert back["payload"] == {"type": "ActivityState", "state": "active"}
    assert back["ts"] == NOW


@pytest.mark.parametrize(
    ("policy", "clean", "drops"),
    [
        (canary_policy(), 3, {}),
        (None, 0, {"no_consent": 3}),
    ],
)
def test_heartbeats_pass_with_metadata_consent_only(
    policy: ConsentPolicy | None, clean: int, drops: dict[str, int]
) -> None:
    beats = [heartbeat(IDENTITY, NOW + i * 5 * S) for i in range(3)]
    assert route(beats, policy) == (clean, drops)


def test_a_restarted_canary_is_not_taken_for_a_duplicate() -> None:
    """seq is the event time, so a new process continues above the old one."""
    seen = DeviceSeen()
    first = [heartbeat(IDENTITY, NOW + i * S) for i in range(5)]
    after_restart = [heartbeat(IDENTITY, NOW + 60 * S + i * S) for i in range(5)]
    assert route(first, canary_policy(), seen) == (5, {})
    assert route(after_restart, canary_policy(), seen) == (5, {})


@pytest.mark.parametrize(
    ("now", "newest", "started", "age"),
    [
        (NOW + 7 * S, Sighting(NOW, NOW + 2 * S), NOW - 100 * S, 7.0),  # newest landed 7 s ago
        (NOW + 90 * S, None, NOW, 90.0),  # nothing landed since start: age grows from start
        (NOW, Sighting(NOW + S, NOW + 2 * S), NOW, 0.0),  # a clock a little ahead: not negative
    ],
)
def test_age(now: int, newest: Sighting | None, started: int, age: float) -> None:
    assert age_seconds(now, newest, started) == age


def test_transit_is_event_time_to_insert() -> None:
    assert transit_seconds(Sighting(NOW, NOW + 1_500_000)) == 1.5
