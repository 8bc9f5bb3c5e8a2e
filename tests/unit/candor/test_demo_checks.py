"""The demo's verdicts: a dead child is named with its exit status or signal and
the end of its log; the landing check counts exactly this run's events."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from candor.demo import (
    Child,
    ChildDied,
    _check_children,
    compare_landed,
    describe_exit,
    log_tail,
)
from producers.simulator.simulator import SentEvents, Simulator, run_simulation

START = 1_700_000_000_000_000


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (None, "is still running"),
        (0, "exited with status 0"),
        (1, "exited with status 1"),
        (-signal.SIGSEGV, "was killed by SIGSEGV (exit status -11)"),
        (-signal.SIGKILL, "was killed by SIGKILL (exit status -9)"),
        (-200, "was killed by signal 200 (exit status -200)"),
    ],
)
def test_an_exit_is_described_by_its_status_or_signal(code: int | None, said: str) -> None:
    assert describe_exit(code) == said


def test_log_tail_gives_the_last_lines_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "sink.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(100)) + b"\xff bad\n")
    assert log_tail(log, 3) == ["line 98", "line 99", "\ufffd bad"]
    assert log_tail(tmp_path / "missing.log") == []


def test_a_dead_child_is_reported_with_its_status_and_log(tmp_path: Path) -> None:
    """A `candor` child that ends on its own stops the demo with why and what it said."""
    child = Child("sink", ["sink", "--all", "--no-such-option"], tmp_path)
    deadline = time.monotonic() + 60
    while child.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ChildDied, match="the sink process exited with status 2"):
        _check_children([child])
    report = child.report()
    assert "the sink process exited with status 2" in report
    assert "unrecognized arguments: --no-such-option" in report
    assert str(child.log) in report


@pytest.mark.parametrize(
    ("landed", "verdict"),
    [
        # every accepted event once
        ({"a": 1, "b": 1, "c": 1}, (3, 0, 0, 0, True)),
        # one missing
        ({"a": 1, "b": 1}, (2, 1, 0, 0, False)),
        # one more: an event of a device whose events must not land (or another run's)
        ({"a": 1, "b": 1, "c": 1, "z": 1}, (3, 0, 1, 0, False)),
        # one stored twice (different sort keys survive FINAL)
        ({"a": 1, "b": 2, "c": 1}, (3, 0, 0, 1, False)),
    ],
)
def test_the_landing_check_fails_on_fewer_or_more(
    landed: dict[str, int], verdict: tuple[int, int, int, int, bool]
) -> None:
    check = compare_landed({"a", "b", "c"}, landed)
    assert check.expected == 3
    assert (check.landed, check.missing, check.unexpected, check.duplicated, check.exact) == verdict


class _ListSink:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def publish(self, event: dict[str, object]) -> None:
        self.events.append(event)


def test_the_simulator_reports_exactly_what_it_published_per_device() -> None:
    sim = Simulator(3, seed=7, start_ts=START)
    sink, sent = _ListSink(), SentEvents()
    run_simulation(sim, sink, duration_s=120, sent=sent)
    assert sent.count() == len(sink.events) > 0
    devices = [d.device_id for d in sim.devices]
    assert set(sent.by_device) == set(devices)
    for device in devices:
        assert sent.by_device[device] == [
            e["event_id"] for e in sink.events if e["device_id"] == device
        ]
    assert sent.event_ids(devices[1:]) == {
        e["event_id"] for e in sink.events if e["device_id"] != devices[0]
    }


class _Stop(Exception):
    pass


def test_a_progress_callback_that_raises_ends_the_run() -> None:
    """The demo stops publishing as soon as a child is seen dead."""
    sim = Simulator(2, seed=3, start_ts=START)
    sink, sent = _ListSink(), SentEvents()
    ticks = iter(range(1_000_000))

    def stop(_progress: object) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        run_simulation(
            sim,
            sink,
            duration_s=3600,
            progress_callback=stop,
            sent=sent,
            progress_interval_s=5.0,
            clock=lambda: float(next(ticks)),
        )
    assert 0 < len(sink.events) < sum(1 for _ in sim.events(3600))
    assert sent.count() == len(sink.events)
