from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from privacy.capture_hours import CaptureHours, InvalidCaptureHours, within_capture_hours
from privacy.consent import ConsentPolicy, Scope, evaluate
from tests.unit.privacy.privacy_events import ORG, SUBJECT, make_event

WEEKDAYS = frozenset(range(5))


def micros(iso: str) -> int:
    """Micros since epoch of an ISO instant with explicit offset."""
    moment = datetime.fromisoformat(iso)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def hours(start: str, end: str, tz: str, days: frozenset[int] = WEEKDAYS) -> CaptureHours:
    return CaptureHours(ORG, days, time.fromisoformat(start), time.fromisoformat(end), tz)


@pytest.mark.parametrize(
    ("window", "instant", "inside"),
    [
        # 2026-11-24 is a Tuesday. Paris is UTC+1 in November.
        (("09:00", "17:00", "Europe/Paris"), "2026-11-24T08:00:00+00:00", True),
        (("09:00", "17:00", "Europe/Paris"), "2026-11-24T07:59:59+00:00", False),
        (("09:00", "17:00", "Europe/Paris"), "2026-11-24T16:00:00+00:00", False),  # end excl.
        (("09:00", "17:00", "Europe/Paris"), "2026-11-24T15:59:59+00:00", True),
        # Same UTC instant, different zones: 10:00 UTC is 19:00 in Tokyo, 05:00 in NY.
        (("09:00", "17:00", "Asia/Tokyo"), "2026-11-24T10:00:00+00:00", False),
        (("09:00", "17:00", "America/New_York"), "2026-11-24T10:00:00+00:00", False),
        (("09:00", "17:00", "America/New_York"), "2026-11-24T14:00:00+00:00", True),
        # Weekday is judged locally: Friday 23:30 UTC is Saturday 08:30 in Auckland.
        (("08:00", "18:00", "Pacific/Auckland"), "2026-11-27T23:30:00+00:00", False),
        # Monday 22:00 UTC is Tuesday 09:00 in Sydney (UTC+11): inside.
        (("08:00", "18:00", "Australia/Sydney"), "2026-11-23T22:00:00+00:00", True),
        # Saturday is never inside a Mon-Fri window.
        (("00:00", "00:00", "UTC"), "2026-11-28T12:00:00+00:00", False),
        (("00:00", "00:00", "UTC"), "2026-11-27T23:59:59+00:00", True),  # whole Friday
        # Night shift crossing midnight, Mon-Fri starts: Friday 23:00 and Saturday 05:00
        # belong to Friday's shift; Saturday 23:00 does not; Monday 03:00 belongs to Sunday.
        (("22:00", "06:00", "UTC"), "2026-11-27T23:00:00+00:00", True),
        (("22:00", "06:00", "UTC"), "2026-11-28T05:59:59+00:00", True),
        (("22:00", "06:00", "UTC"), "2026-11-28T06:00:00+00:00", False),
        (("22:00", "06:00", "UTC"), "2026-11-28T23:00:00+00:00", False),
        (("22:00", "06:00", "UTC"), "2026-11-23T03:00:00+00:00", False),
        (("22:00", "06:00", "UTC"), "2026-11-24T03:00:00+00:00", True),
        (("22:00", "06:00", "UTC"), "2026-11-24T12:00:00+00:00", False),
        # DST: Berlin switches to UTC+2 on 2026-03-29; 09:00 local follows the wall clock.
        (("09:00", "17:00", "Europe/Berlin"), "2026-03-27T08:00:00+00:00", True),
        (("09:00", "17:00", "Europe/Berlin"), "2026-03-30T07:30:00+00:00", True),
        (("09:00", "17:00", "Europe/Berlin"), "2026-03-30T06:30:00+00:00", False),
    ],
)
def test_within_capture_hours(window: tuple[str, str, str], instant: str, inside: bool) -> None:
    assert within_capture_hours(hours(*window), micros(instant)) is inside


def test_events_outside_capture_hours_are_dropped() -> None:
    policy = ConsentPolicy(SUBJECT, ORG, 1, frozenset(Scope), "x", 0)
    at_night = make_event("Scroll", ts=micros("2026-11-24T02:00:00+00:00"))
    at_work = make_event("Scroll", ts=micros("2026-11-24T10:00:00+00:00"))
    window = hours("09:00", "17:00", "UTC")
    assert evaluate(at_night, policy, window).reason == "outside_capture_hours"
    assert evaluate(at_work, policy, window).keep
    assert evaluate(at_night, policy, None).keep  # no hours configured: no limit


def test_no_consent_is_reported_before_capture_hours() -> None:
    at_night = make_event("Scroll", ts=micros("2026-11-24T02:00:00+00:00"))
    assert evaluate(at_night, None, hours("09:00", "17:00", "UTC")).reason == "no_consent"


def test_capture_hours_dict_round_trip() -> None:
    data = {
        "org_id": ORG,
        "weekdays": ["Mon", "tue", 4],
        "start": "08:30",
        "end": "17:00",
        "tz": "Europe/Paris",
    }
    parsed = CaptureHours.from_dict(data)
    assert parsed.weekdays == {0, 1, 4}
    assert parsed.start == time(8, 30)
    assert CaptureHours.from_dict(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    "change",
    [
        {"tz": "Mars/Olympus_Mons"},
        {"weekdays": ["someday"]},
        {"weekdays": [7]},
        {"start": "25:00"},
        {"end": None},
    ],
)
def test_invalid_capture_hours_are_refused(change: dict[str, object]) -> None:
    data = {
        "org_id": ORG,
        "weekdays": ["mon"],
        "start": "09:00",
        "end": "17:00",
        "tz": "UTC",
    } | change
    with pytest.raises(InvalidCaptureHours):
        CaptureHours.from_dict(data)
