"""A sink knows a record's type from its route and always decrypts through a hook."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from schemas.codec import encode
from sinks.consumer import SinkOptions
from sinks.routes import ROUTES, map_message
from tests.unit.sinks.sinks_samples import SESSION, action, event


@pytest.mark.parametrize(
    ("table", "record", "datum"),
    [
        ("events", "CaptureEvent", event()),
        ("actions", "Action", action()),
        ("sessions", "Session", SESSION),
    ],
)
def test_the_decrypt_hook_is_told_the_routes_record(
    table: str, record: str, datum: dict[str, Any]
) -> None:
    seen: list[str] = []

    def hook(name: str, decoded: dict[str, Any]) -> dict[str, Any]:
        seen.append(name)
        return decoded

    route = ROUTES[table]
    mapped = map_message(route, encode(record, datum), None, "t", 0, 0, hook)
    assert len(mapped) == 1 and seen == [record]


def test_an_erased_subjects_record_is_skipped_by_the_hook() -> None:
    value = encode("CaptureEvent", event())
    assert map_message(ROUTES["events"], value, None, "t", 0, 0, lambda *_: None) == []


def test_a_sink_cannot_be_configured_without_a_decrypt_hook() -> None:
    decrypt = next(f for f in dataclasses.fields(SinkOptions) if f.name == "decrypt")
    assert decrypt.default is dataclasses.MISSING
    with pytest.raises(TypeError):
        SinkOptions()  # type: ignore[call-arg]
