"""`check_capture_event` refuses exactly what the plain reading of its rules
refuses, with the same field and message, on random events near the edges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.domain import check_capture_event
from schemas.errors import InvalidField
from tests.unit.schemas.schemas_samples import PAYLOADS, event


def _at_least(datum: Mapping[str, Any], field: str, low: int, prefix: str = "") -> None:
    value = datum.get(field)
    if value is not None and value < low:
        raise InvalidField(prefix + field, f"must be >= {low}, got {value}")


def reference_check(event: Mapping[str, Any]) -> None:
    """The rules one by one, in their order (how the check read before it was
    shaped for speed)."""
    for field in ("seq", "ts", "received_ts", "consent_version"):
        _at_least(event, field, 0)
    payload = event["payload"]
    kind = payload["type"]
    if kind == "KeyInput":
        _at_least(payload, "count", 1, "payload.")
        modifiers = payload.get("modifiers") or ()
        if len(set(modifiers)) != len(modifiers):
            raise InvalidField("payload.modifiers", "a modifier is listed twice")
    elif kind == "MouseMove":
        for point in payload["path"]:
            _at_least(point, "dt_ms", 0, "payload.path[].")
    elif kind == "ScreenFrame":
        _at_least(payload, "width", 0, "payload.")
        _at_least(payload, "height", 0, "payload.")
    elif kind == "IdeEdit":
        _at_least(payload, "chars_inserted", 0, "payload.")
        _at_least(payload, "chars_deleted", 0, "payload.")


def _outcome(check: Any, datum: dict[str, Any]) -> tuple[str, str] | None:
    try:
        check(datum)
    except InvalidField as err:
        return err.field, str(err)
    return None


_edge = st.integers(-2, 2)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(PAYLOADS)), st.data())
def test_the_event_check_refuses_what_its_rules_say(kind: str, data: st.DataObject) -> None:
    datum = event(kind)
    for field in ("seq", "ts"):
        datum[field] = data.draw(_edge)
    for field in ("received_ts", "consent_version"):
        datum[field] = data.draw(st.none() | _edge)
    payload = datum["payload"]
    if kind == "KeyInput":
        payload["count"] = data.draw(_edge)
        payload["modifiers"] = data.draw(
            st.lists(st.sampled_from(["ctrl", "alt", "shift", "meta"]), max_size=3)
        )
    elif kind == "MouseMove":
        payload["path"] = [
            {"dt_ms": dt, "x": 0, "y": 0} for dt in data.draw(st.lists(_edge, max_size=4))
        ]
    elif kind == "ScreenFrame":
        payload["width"], payload["height"] = data.draw(_edge), data.draw(_edge)
    elif kind == "IdeEdit":
        payload["chars_inserted"], payload["chars_deleted"] = data.draw(_edge), data.draw(_edge)
    assert _outcome(check_capture_event, datum) == _outcome(reference_check, datum)
