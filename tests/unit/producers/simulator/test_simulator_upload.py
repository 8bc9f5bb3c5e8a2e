"""The simulator's frame uploads: only the first N frames of devices with a token
get pixels, the published event carries the uploaded frame's ref, refusals
are counted, rate limits and outages retried (no sockets: `put` is a fake)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from producers.sdk.envelope import Event
from producers.simulator.simulator import Simulator
from producers.simulator.upload import FramingSink, _Answer


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


class FakeGateway:
    """Answers PUTs from a script per call, records what it was given."""

    def __init__(
        self, script: list[_Answer | None] | None = None, default: _Answer | None = None
    ) -> None:
        self.script = list(script or [])
        self.default = default or _Answer(201, {"stored": True, "redactions": {"password": 1}}, 0.0)
        self.calls: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, token: str, digest: str, data: bytes) -> _Answer | None:
        with self.lock:
            self.calls.append((token, digest, data))
            if self.script:
                return self.script.pop(0)
        return self.default


def _simulate(sink: Any, people: int = 3, seconds: float = 120.0) -> list[Event]:
    events = list(Simulator(people, 11, 1_760_000_000_000_000).events(seconds))
    for event in events:
        sink.publish(event)
    return events


def test_first_frames_of_devices_with_tokens_get_pixels_and_their_ref() -> None:
    devices = Simulator(3, 11, 1_760_000_000_000_000).devices
    gateway = FakeGateway()
    out = Collect()
    sink = FramingSink(
        out,
        "http://gw",
        {devices[1].device_id: "tok-1", devices[2].device_id: "tok-2"},
        2,
        put=gateway,
    )
    original = _simulate(sink)
    report = sink.finish(10)

    assert [e["event_id"] for e in out.events] == [e["event_id"] for e in original]
    assert report.rendered == 4 and report.stored == 4 and report.redactions == {"password": 4}
    uploaded = {digest: (token, data) for token, digest, data in gateway.calls}
    assert len(uploaded) == 4
    for token, data in uploaded.values():
        assert token in ("tok-1", "tok-2")
        assert data.startswith(b"\x89PNG")
    frames = [e for e in out.events if e["payload"]["type"] == "ScreenFrame"]
    refs = [str(e["payload"]["ref"]).removeprefix("sha256:") for e in frames]
    assert set(uploaded) <= set(refs)
    for digest, (_, data) in uploaded.items():
        assert hashlib.sha256(data).hexdigest() == digest
    # the device without a token, and frames after the first two, keep made-up refs
    by_device: dict[str, list[str]] = {}
    for event, ref in zip(frames, refs, strict=True):
        by_device.setdefault(str(event["device_id"]), []).append(ref)
    assert not set(by_device[devices[0].device_id]) & set(uploaded)
    for d in devices[1:]:
        assert set(by_device[d.device_id][:2]) <= set(uploaded)
        assert not set(by_device[d.device_id][2:]) & set(uploaded)


def test_refusals_are_counted_and_rate_limits_and_outages_retried() -> None:
    devices = Simulator(1, 11, 1_760_000_000_000_000).devices
    waits: list[float] = []
    gateway = FakeGateway(
        [
            _Answer(429, {"error": "rate_limited"}, 3.0),  # frame 1: retried after 3 s
            None,  # then a network error: retried
            _Answer(201, {"stored": True, "redactions": {}}, 0.0),
            _Answer(403, {"error": "no_consent"}, 0.0),  # frame 2: refused for good
            _Answer(200, {"stored": False}, 0.0),  # frame 3: already there
        ]
    )
    sink = FramingSink(
        Collect(),
        "http://gw",
        {devices[0].device_id: "t"},
        3,
        workers=1,
        put=gateway,
        sleep=waits.append,
    )
    _simulate(sink, people=1)
    report = sink.finish(60)
    assert (report.rendered, report.stored, report.duplicates) == (3, 1, 1)
    assert report.refusals == {"no_consent": 1} and report.unfinished == 0
    assert waits == [3.0, 1.0]
    assert len(gateway.calls) == 5


def test_retries_stop_at_the_deadline() -> None:
    devices = Simulator(1, 11, 1_760_000_000_000_000).devices
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    gateway = FakeGateway(default=_Answer(503, {"error": "consent_unavailable"}, 5.0))
    sink = FramingSink(
        Collect(),
        "http://gw",
        {devices[0].device_id: "t"},
        1,
        workers=1,
        put=gateway,
        clock=lambda: now[0],
        sleep=sleep,
    )
    _simulate(sink, people=1)
    report = sink.finish(12)
    assert (report.stored, report.unfinished) == (0, 1)
