"""The workload simulator: deterministic, contract-shaped, in event-time order,
with the mix the pipeline needs; and the rate-paced runner."""

from __future__ import annotations

import collections
import itertools
import re
from typing import Any

import pytest

from producers.simulator.pacing import TokenBucket
from producers.simulator.simulator import SimulationProgress, Simulator, run_simulation
from tests.unit.producers.producers_fakes import FakeClock

START = 1_700_000_000_000_000
PAYLOAD_FIELDS = {
    "KeyInput": {"key", "text", "modifiers", "is_secure_field", "count"},
    "MouseMove": {"path"},
    "MouseClick": {"button", "x", "y", "double"},
    "Scroll": {"dx", "dy"},
    "WindowFocus": {"previous_app_name"},
    "ScreenFrame": {"frame_id", "ref", "width", "height", "phash"},
    "IdeEdit": {"path_hash", "language", "chars_inserted", "chars_deleted", "diff"},
    "TerminalCommand": {"command", "exit_code", "cwd_hash"},
    "ActivityState": {"state"},
}


@pytest.fixture(scope="module")
def hour() -> list[dict[str, Any]]:
    return list(Simulator(4, seed=11, start_ts=START).events(3600))


def test_the_same_seed_gives_the_same_events_and_another_seed_others() -> None:
    first = list(Simulator(3, seed=5, start_ts=START).events(300))
    assert first == list(Simulator(3, seed=5, start_ts=START).events(300))
    assert first != list(Simulator(3, seed=6, start_ts=START).events(300))


def test_events_are_in_event_time_order_within_the_window(hour: list[dict[str, Any]]) -> None:
    stamps = [e["ts"] for e in hour]
    assert stamps == sorted(stamps)
    assert stamps[0] >= START and stamps[-1] < START + 3600 * 1_000_000


def test_each_device_has_strictly_increasing_seq_and_ts(hour: list[dict[str, Any]]) -> None:
    by_device: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for event in hour:
        by_device[event["device_id"]].append(event)
    assert len(by_device) == 4
    for events in by_device.values():
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        stamps = [e["ts"] for e in events]
        assert all(a < b for a, b in itertools.pairwise(stamps))
    assert len({e["event_id"] for e in hour}) == len(hour)


def test_every_event_has_the_contract_shape(hour: list[dict[str, Any]]) -> None:
    for event in hour:
        payload = dict(event["payload"])
        assert set(payload) - {"type"} == PAYLOAD_FIELDS[payload.pop("type")]
        assert set(event["app"]) == {"app_name", "window_title", "url_host"}
        assert isinstance(event["ts"], int) and event["redactions"] == []


def test_an_hour_of_work_has_every_kind_of_event(hour: list[dict[str, Any]]) -> None:
    kinds = collections.Counter(e["payload"]["type"] for e in hour)
    assert set(kinds) == set(PAYLOAD_FIELDS)
    assert kinds["KeyInput"] > kinds["MouseClick"] > 0
    states = {e["payload"]["state"] for e in hour if e["payload"]["type"] == "ActivityState"}
    assert states == {"active", "idle", "locked"}
    assert any(e["payload"].get("modifiers") == ["ctrl"] for e in hour)
    assert any(e["payload"].get("is_secure_field") for e in hour)


def test_commands_carry_fake_secrets_and_emails_for_redaction(hour: list[dict[str, Any]]) -> None:
    commands = " ".join(
        e["payload"]["command"] for e in hour if e["payload"]["type"] == "TerminalCommand"
    )
    assert re.search(r"AKIA[A-Z0-9]{16}", commands)
    assert re.search(r"PGPASSWORD=\S+|Bearer \S+|app:\S+@", commands)
    assert re.search(r"[a-z]+@example\.com", commands)


def test_screens_are_captured_about_every_five_seconds_while_active(
    hour: list[dict[str, Any]],
) -> None:
    device = hour[0]["device_id"]
    frames = [e for e in hour if e["device_id"] == device and e["payload"]["type"] == "ScreenFrame"]
    gaps = [(b["ts"] - a["ts"]) / 1e6 for a, b in itertools.pairwise(frames)]
    assert 4.5 <= sorted(gaps)[len(gaps) // 2] <= 5.5
    assert all(f["payload"]["ref"].startswith("sha256:") for f in frames)
    assert len({f["payload"]["ref"] for f in frames}) == len(frames)


@pytest.mark.parametrize(
    "rate,burst,calls,expected_waits",
    [
        (10.0, 1.0, 3, [0.0, 0.1, 0.2]),
        (10.0, 2.0, 4, [0.0, 0.0, 0.1, 0.2]),
        (1.0, 1.0, 2, [0.0, 1.0]),
    ],
)
def test_token_bucket_waits_once_the_burst_is_spent(
    rate: float, burst: float, calls: int, expected_waits: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    assert [round(bucket.reserve(0.0), 6) for _ in range(calls)] == expected_waits


def test_token_bucket_refills_with_time() -> None:
    bucket = TokenBucket(10.0, 1.0, now=0.0)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.1) == 0.0
    assert bucket.reserve(0.1) == pytest.approx(0.1)


class ListSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)


@pytest.mark.parametrize("rate", [5.0, 50.0])
def test_run_simulation_paces_to_the_rate_and_reports_progress(rate: float) -> None:
    clock = FakeClock(0.0)
    sink = ListSink()
    reports: list[SimulationProgress] = []
    simulator = Simulator(2, seed=3, start_ts=START)
    final = run_simulation(
        simulator,
        sink,
        duration_s=60,
        rate=rate,
        burst=1.0,
        progress_callback=reports.append,
        clock=clock,
        sleep=clock.sleep,
    )
    expected = list(simulator.events(60))
    assert sink.events == expected
    assert final.events == len(expected)
    assert final.elapsed_s == pytest.approx((len(expected) - 1) / rate, rel=0.01)
    assert final.rate_per_s == pytest.approx(rate, rel=0.02)
    assert reports[-1] == final and len(reports) >= int(final.elapsed_s) - 1


def test_run_simulation_without_a_rate_never_sleeps() -> None:
    clock = FakeClock(0.0)

    def no_sleep(_seconds: float) -> None:
        raise AssertionError("slept without a rate limit")

    final = run_simulation(
        Simulator(1, seed=1, start_ts=START), ListSink(), duration_s=30, clock=clock, sleep=no_sleep
    )
    assert final.events > 0


def test_every_simulated_event_passes_the_shared_codec() -> None:
    from schemas.codec import decode_event, encode_event

    for event in Simulator(2, seed=9, start_ts=START).events(900):
        decoded = decode_event(encode_event(event))
        assert {name: decoded[name] for name in event} == event  # newer fields default
