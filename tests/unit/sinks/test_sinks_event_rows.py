"""`event_rows` (a CleanBatch's events at once, built for speed) lands exactly
the rows `event_row` defines, value for value and type for type, on any events:
every payload type, fields missing or extra, values of every JSON type."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import UnknownPayloadType
from sinks.rows import event_row, event_rows
from tests.unit.sinks.sinks_samples import PAYLOADS, event

EQUIVALENCE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Values whose JSON differs although they compare equal (True == 1 == 1.0,
# 0.0 == -0.0) or that cannot be dict keys (lists, dicts).
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, 2.5]),
    st.integers(),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
POINT = st.fixed_dictionaries(
    {"dt_ms": st.integers(0, 50), "x": st.integers(-5, 2000), "y": st.integers(-5, 2000)}
)


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A sample payload of some type, with fields dropped, changed or added."""
    kind = draw(st.sampled_from(sorted(PAYLOADS)))
    payload = copy.deepcopy(PAYLOADS[kind])
    for name in sorted(payload):
        if name == "type" or (kind == "MouseMove" and name == "path"):
            continue
        action = draw(st.sampled_from(["keep", "keep", "drop", "change"]))
        if action == "drop":
            del payload[name]
        elif action == "change":
            payload[name] = draw(VALUES if name != "modifiers" else st.lists(st.text(max_size=3)))
    if kind == "MouseMove":
        payload["path"] = draw(st.lists(POINT, max_size=5))
    for name, value in draw(st.dictionaries(st.sampled_from(["a", "z", "double"]), VALUES)).items():
        payload.setdefault(name, value)
    if draw(st.booleans()):  # "type" first, as a hand-written payload would have it
        payload = {"type": payload.pop("type"), **payload}
    return payload


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    ev = event(seq=draw(st.integers(0, 10**6)))
    ev["payload"] = draw(payloads())
    for optional in ("received_ts", "consent_version", "client_version", "redactions"):
        if draw(st.booleans()):
            del ev[optional]
    ev["app"]["window_title"] = draw(st.one_of(st.none(), st.text(max_size=5)))
    return ev


@EQUIVALENCE
@given(st.lists(events(), max_size=8))
def test_event_rows_are_the_event_row_of_each_event(evs: list[dict[str, Any]]) -> None:
    # repr tells True from 1, -0.0 from 0.0 and a list from a tuple: the rows
    # must be the same values of the same types, what ClickHouse receives.
    assert repr(event_rows(evs)) == repr([event_row(e) for e in evs])
    assert repr(event_rows(evs)) == repr([event_row(e) for e in evs])  # once planned


def test_payload_json_of_a_field_that_is_once_a_boolean_and_once_a_number() -> None:
    one, true = event("MouseClick"), event("MouseClick")
    one["payload"]["double"], true["payload"]["double"] = 1, True
    rows = event_rows([true, one, true])
    assert [r[31] for r in rows] == ['{"double":true}', '{"double":1}', '{"double":true}']
    assert rows == [event_row(e) for e in (true, one, true)]


def test_rows_share_no_list_with_the_events() -> None:
    ev = event("KeyInput")
    (row,) = event_rows([ev])
    ev["payload"]["modifiers"].append("alt")
    ev["redactions"].append("url")
    assert row[13] == ["ctrl"] and row[32] == ["email"]


def test_an_unknown_payload_type_is_refused_before_or_after_known_ones() -> None:
    evs = [event("Scroll"), event("KeyInput")]
    evs[1]["payload"] = {"type": "Telepathy", "x": 1}
    with pytest.raises(UnknownPayloadType):
        event_rows(evs)
    with pytest.raises(UnknownPayloadType):
        event_rows(evs[::-1])


# What orjson writes for `payload_json` must be what json writes: every code
# point (control characters, U+2028, beyond the BMP), integers at and beyond
# 64 bits, a lone surrogate (which orjson refuses), mouse paths.
AWKWARD_TEXT = st.text(
    alphabet=st.one_of(st.characters(codec=None), st.sampled_from("\x00\x1f\x7f\u2028\ud800")),
    max_size=6,
)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1]),
    AWKWARD_TEXT,
)

NUMBER = st.one_of(st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**64]))


@EQUIVALENCE
@given(
    st.sampled_from(["ScreenFrame", "IdeEdit", "TerminalCommand", "MouseMove"]),
    st.dictionaries(st.sampled_from(["frame_id", "width", "cwd_hash", "a", "z"]), PLAIN),
    st.lists(st.fixed_dictionaries({"dt_ms": PLAIN, "x": NUMBER, "y": NUMBER}), max_size=4),
)
def test_payload_json_of_strings_numbers_and_paths_is_json_s(
    kind: str, extra: dict[str, Any], path: list[dict[str, Any]]
) -> None:
    ev = event(kind)
    ev["payload"].update(extra)
    ev["redactions"] = []
    if kind == "MouseMove":
        ev["payload"]["path"] = path
    assert repr(event_rows([ev])) == repr([event_row(ev)])
