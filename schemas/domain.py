"""Value domains the Avro types cannot express, checked on encode and on decode.

Avro says ``count`` is an ``int``; Candor says it is at least 1. These checks
run on the in-memory form (payload as ``{"type": ..., ...}``) after the type
checks passed, so they compare ints with ints. Each raises `InvalidField` with
the dotted field path. They are deliberately few and cheap (they run per
event) and never look at content fields, which redaction may rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.errors import InvalidField

#: Every consent scope a ConsentPolicy may grant.
CONSENT_SCOPES: frozenset[str] = frozenset(
    {
        "activity_metadata",
        "window_titles",
        "keystroke_content",
        "screen_frames",
        "ide_content",
        "terminal_content",
        "training_use",
        "analytics",
    }
)
MINUTE_MICROS = 60_000_000

Check = Callable[[Mapping[str, Any]], None]


def _at_least(datum: Mapping[str, Any], field: str, low: int, prefix: str = "") -> None:
    value = datum.get(field)
    if value is not None and value < low:
        raise InvalidField(prefix + field, f"must be >= {low}, got {value}")


def _ordered(datum: Mapping[str, Any], start: str, end: str) -> None:
    if datum[end] < datum[start]:
        raise InvalidField(end, f"must be >= {start}")


def _check_key_input(payload: Mapping[str, Any]) -> None:
    count = payload.get("count")
    if count is not None and count < 1:
        _at_least(payload, "count", 1, "payload.")
    modifiers = payload.get("modifiers")
    if modifiers and len(modifiers) > 1 and len(set(modifiers)) != len(modifiers):
        raise InvalidField("payload.modifiers", "a modifier is listed twice")


def _check_mouse_move(payload: Mapping[str, Any]) -> None:
    for point in payload["path"]:
        dt_ms = point.get("dt_ms")
        if dt_ms is not None and dt_ms < 0:
            _at_least(point, "dt_ms", 0, "payload.path[].")


def _check_screen_frame(payload: Mapping[str, Any]) -> None:
    _at_least(payload, "width", 0, "payload.")
    _at_least(payload, "height", 0, "payload.")


def _check_ide_edit(payload: Mapping[str, Any]) -> None:
    _at_least(payload, "chars_inserted", 0, "payload.")
    _at_least(payload, "chars_deleted", 0, "payload.")


#: The payload types with a domain of their own, and its check. A dict lookup
#: instead of a chain of comparisons, and the common cases (a KeyInput, a
#: MouseMove's points) compared inline: this runs for every captured event.
_PAYLOAD_CHECKS: dict[str, Check] = {
    "KeyInput": _check_key_input,
    "MouseMove": _check_mouse_move,
    "ScreenFrame": _check_screen_frame,
    "IdeEdit": _check_ide_edit,
}


def check_capture_event(event: Mapping[str, Any]) -> None:
    """Raise `InvalidField` unless seq/timestamps/versions and payload counts are in range."""
    # Inlined comparisons: this runs for every captured event.
    if event["seq"] < 0 or event["ts"] < 0:
        _at_least(event, "seq", 0)
        _at_least(event, "ts", 0)
    received, consent = event.get("received_ts"), event.get("consent_version")
    if (received is not None and received < 0) or (consent is not None and consent < 0):
        _at_least(event, "received_ts", 0)
        _at_least(event, "consent_version", 0)
    payload = event["payload"]
    check = _PAYLOAD_CHECKS.get(payload["type"])
    if check is not None:
        check(payload)


def check_device_batch(batch: Mapping[str, Any]) -> None:
    """Raise `InvalidField` unless the batch header's seq range and time are in range
    and it holds at least one event.

    The events themselves are not checked here: `schemas.batch.decode_capture`
    checks each on its own, so that one bad event is rejected alone, by index.
    """
    _at_least(batch, "first_seq", 0)
    _at_least(batch, "sent_ts", 0)
    if batch["last_seq"] < batch["first_seq"]:
        raise InvalidField("last_seq", "must be >= first_seq")
    if not batch["events"]:
        raise InvalidField("events", "a batch holds at least one event")


def check_clean_batch(batch: Mapping[str, Any]) -> None:
    """Raise `InvalidField` unless the clean batch's seq range is in range, its
    key and its content come together, it holds at least one event, and each
    event is in its domain and names the batch's org, subject and device."""
    _at_least(batch, "first_seq", 0)
    if batch["last_seq"] < batch["first_seq"]:
        raise InvalidField("last_seq", "must be >= first_seq")
    if (batch["key_id"] is None) != (batch["content"] is None):
        raise InvalidField("content", "sealed content and its key_id come together")
    events = batch["events"]
    if not events:
        raise InvalidField("events", "a batch holds at least one event")
    identity = (batch["org_id"], batch["subject_id"], batch["device_id"])
    for index, event in enumerate(events):
        try:
            check_capture_event(event)
        except InvalidField as err:
            raise err.within(f"events[{index}]") from None
        if (event["org_id"], event["subject_id"], event["device_id"]) != identity:
            raise InvalidField(f"events[{index}]", "names another org, subject or device")


def check_consent_policy(policy: Mapping[str, Any]) -> None:
    """Raise `InvalidField` for a negative version/time or a scope Candor does not know."""
    _at_least(policy, "version", 0)
    _at_least(policy, "changed_at", 0)
    scopes = policy["scopes"]
    unknown = set(scopes) - CONSENT_SCOPES
    if unknown:
        raise InvalidField("scopes", f"unknown scopes {sorted(unknown)}")
    if len(set(scopes)) != len(scopes):
        raise InvalidField("scopes", "a scope is listed twice")


def check_session(session: Mapping[str, Any]) -> None:
    """Raise `InvalidField` if the session ends before it starts or a count is negative."""
    _ordered(session, "start_ts", "end_ts")
    for field in ("keystrokes", "clicks", "scrolls", "commands_run", "event_ids_count"):
        _at_least(session, field, 0)


def check_minute_aggregate(minute: Mapping[str, Any]) -> None:
    """Raise `InvalidField` if the window is not minute-aligned or a count is negative."""
    if minute["window_start"] % MINUTE_MICROS:
        raise InvalidField("window_start", "must be aligned to a minute")
    for field in ("keys", "clicks", "scrolls", "events"):
        _at_least(minute, field, 0)


def check_action(action: Mapping[str, Any]) -> None:
    """Raise `InvalidField` if the action ends before it starts or folds no event."""
    _ordered(action, "start_ts", "end_ts")
    _at_least(action, "event_count", 1)


#: Domain check by short record name; records without an entry have none.
CHECKS: Mapping[str, Check] = {
    "CaptureEvent": check_capture_event,
    "DeviceBatch": check_device_batch,
    "CleanBatch": check_clean_batch,
    "ConsentPolicy": check_consent_policy,
    "Session": check_session,
    "MinuteAggregate": check_minute_aggregate,
    "Action": check_action,
}
