"""Capture hours: the local working window of an org outside which nothing is kept.

An org declares the weekdays and the local time window (in an IANA time zone) in
which capture is allowed. A window whose ``end`` is at or before its ``start``
crosses midnight and belongs to the weekday on which it *starts*: Monday
22:00-06:00 covers Tuesday 03:00. ``start == end`` means the whole day.
Local wall-clock time is used, so a 09:00-17:00 window follows daylight saving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CaptureHours", "InvalidCaptureHours", "within_capture_hours"]

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class InvalidCaptureHours(ValueError):
    """Capture hours with an unknown time zone, a bad weekday or a bad time."""


@dataclass(frozen=True, slots=True)
class CaptureHours:
    """An org's capture window.

    ``weekdays`` uses ``datetime.weekday()`` numbering (0 = Monday .. 6 = Sunday);
    ``start``/``end`` are local times in ``tz``. Construction raises
    :class:`InvalidCaptureHours` when ``tz`` is not a known zone or a weekday is
    out of range.
    """

    org_id: str
    weekdays: frozenset[int]
    start: time
    end: time
    tz: str

    def __post_init__(self) -> None:
        if not all(isinstance(d, int) and 0 <= d <= 6 for d in self.weekdays):
            raise InvalidCaptureHours(f"weekdays must be in 0..6, got {sorted(self.weekdays)}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidCaptureHours(f"unknown time zone {self.tz!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        """The :class:`ZoneInfo` of ``tz`` (cached by zoneinfo itself)."""
        return ZoneInfo(self.tz)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureHours:
        """Build from ``{"org_id", "weekdays": ["mon", ...] | [0, ...], "start": "09:00",
        "end": "17:30", "tz": "Europe/Paris"}``.

        Raises :class:`InvalidCaptureHours` on any malformed field.
        """
        try:
            weekdays = frozenset(_parse_weekday(d) for d in data["weekdays"])
            return cls(
                org_id=str(data["org_id"]),
                weekdays=weekdays,
                start=time.fromisoformat(str(data["start"])),
                end=time.fromisoformat(str(data["end"])),
                tz=str(data["tz"]),
            )
        except KeyError as err:
            raise InvalidCaptureHours(f"capture hours lack field {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            if isinstance(err, InvalidCaptureHours):
                raise
            raise InvalidCaptureHours(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        """Return the dict form read by :meth:`from_dict` (weekday names, HH:MM[:SS])."""
        return {
            "org_id": self.org_id,
            "weekdays": [_DAY_NAMES[d] for d in sorted(self.weekdays)],
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "tz": self.tz,
        }


def _parse_weekday(day: object) -> int:
    if isinstance(day, int) and not isinstance(day, bool):
        return day
    if isinstance(day, str) and day[:3].lower() in _DAY_NAMES:
        return _DAY_NAMES.index(day[:3].lower())
    raise InvalidCaptureHours(f"not a weekday: {day!r}")


def within_capture_hours(hours: CaptureHours, ts_micros: int) -> bool:
    """Return whether the instant ``ts_micros`` (micros since epoch, UTC) is inside
    ``hours``, judged on the local wall clock of ``hours.tz``.

    The window is half-open: ``start`` is inside, ``end`` is outside.
    """
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_micros)
    local = instant.astimezone(hours.zone)
    clock = local.time().replace(tzinfo=None)
    today = local.weekday()
    if hours.start == hours.end:
        return today in hours.weekdays
    if hours.start < hours.end:
        return today in hours.weekdays and hours.start <= clock < hours.end
    # Crosses midnight: the evening part belongs to today, the morning part to the
    # window that started yesterday.
    if clock >= hours.start:
        return today in hours.weekdays
    if clock < hours.end:
        return (today - 1) % 7 in hours.weekdays
    return False
