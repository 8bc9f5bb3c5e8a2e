"""Envelopes in contract form and a sequence that keeps growing across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producers.sdk.envelope import EnvelopeBuilder, normalize_app
from producers.sdk.errors import EnvelopeError, SequenceError
from producers.sdk.sequence import DeviceSequence

CONTRACT_KEYS = {
    "event_id",
    "org_id",
    "subject_id",
    "device_id",
    "seq",
    "ts",
    "received_ts",
    "app",
    "payload",
    "redactions",
    "consent_version",
}


@pytest.mark.parametrize("block", [1, 3, 1024])
@pytest.mark.parametrize("per_run", [1, 2, 5])
def test_seq_strictly_increases_across_restarts(tmp_path: Path, block: int, per_run: int) -> None:
    path = tmp_path / "sequence.json"
    seen: list[int] = []
    for _restart in range(4):
        sequence = DeviceSequence(path, block=block)  # no close: a crash is a restart too
        seen += [sequence.next() for _ in range(per_run)]
    assert seen == sorted(set(seen))
    assert seen[0] == 1
    assert seen[-1] - seen[0] < 4 * (per_run + block)


def test_a_damaged_sequence_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "sequence.json"
    path.write_text("garbage")
    with pytest.raises(SequenceError):
        DeviceSequence(path)


def builder(tmp_path: Path, now: int = 1_700_000_000_000_000) -> EnvelopeBuilder:
    return EnvelopeBuilder(
        org_id="org-1",
        subject_id="subj-1",
        device_id="dev-1",
        sequence=DeviceSequence(tmp_path / "seq.json"),
        clock=lambda: now,
    )


def test_an_envelope_has_exactly_the_contract_fields(tmp_path: Path) -> None:
    event = builder(tmp_path).build({"type": "Scroll", "dx": 0, "dy": 3}, {"app_name": "code"})
    assert set(event) == CONTRACT_KEYS
    assert event["app"] == {"app_name": "code", "window_title": None, "url_host": None}
    assert (event["seq"], event["ts"], event["redactions"], event["consent_version"]) == (
        1,
        1_700_000_000_000_000,
        [],
        None,
    )
    assert (event["org_id"], event["subject_id"], event["device_id"]) == (
        "org-1",
        "subj-1",
        "dev-1",
    )


def test_envelopes_get_fresh_ids_growing_seq_and_an_explicit_ts(tmp_path: Path) -> None:
    build = builder(tmp_path).build
    events = [
        build({"type": "Scroll", "dx": 0, "dy": 1}, {"app_name": "a"}, ts=5) for _ in range(3)
    ]
    assert len({e["event_id"] for e in events}) == 3
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert {e["ts"] for e in events} == {5}


@pytest.mark.parametrize(
    "payload,app",
    [
        ({"dx": 0}, {"app_name": "code"}),
        ({"type": ""}, {"app_name": "code"}),
        ({"type": "Scroll"}, {}),
        ({"type": "Scroll"}, {"app_name": "code", "colour": "red"}),
    ],
)
def test_unroutable_input_is_refused(
    tmp_path: Path, payload: dict[str, Any], app: dict[str, Any]
) -> None:
    with pytest.raises(EnvelopeError):
        builder(tmp_path).build(payload, app)


def test_app_fields_pass_through() -> None:
    app = {"app_name": "firefox", "window_title": "Inbox", "url_host": "mail.example.com"}
    assert normalize_app(app) == app
