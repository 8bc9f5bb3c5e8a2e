"""A deterministic workload: simulated people at work, as capture events.

`Simulator(people, seed, start_ts).events(duration_s)` yields contract-form
envelopes in event-time order without any I/O. Each person has a device and
an RNG derived from (seed, person index) alone, so the same seed gives the
same events, event_ids included, whatever else runs.

A person switches between an IDE, a terminal, a browser and a chat app
(WindowFocus), types code, shortcuts (ctrl+s), commands and chat lines
(KeyInput chunks), edits files (IdeEdit), runs commands (TerminalCommand,
some with fake secrets and e-mails), moves the mouse (MouseMove paths),
clicks and scrolls, now and then types into a password field, goes idle or
locks the screen (ActivityState), and while active the screen is captured
about every 5 s (ScreenFrame with a content-addressed fake ref).

`run_simulation` publishes such a stream at a target rate (token bucket on
the wall clock, `producers.simulator.pacing`) and reports progress; given a `SentEvents`
it also records the event ids it handed to the sink, per device, so a caller
can check exactly what landed.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from producers.sdk.envelope import Event
from producers.simulator.pacing import TokenBucket
from producers.simulator.workload import (
    APP_WEIGHTS,
    APPS,
    CHAT_LINES,
    CODE_LINES,
    COMMANDS,
    FIRST_NAMES,
    LANGUAGES,
    SOURCE_FILES,
    URL_HOSTS,
    chunk_text,
    fill,
    window_title,
)

_SECOND = 1_000_000
FRAME_INTERVAL_S = 5.0
IDLE_AFTER_S = 60.0


def _hash16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Person:
    """One simulated person and device; `events()` is their infinite timeline."""

    def __init__(self, seed: int, index: int, start_ts: int, org_id: str) -> None:
        self.rng = random.Random(f"candor-simulator:{seed}:{index}")
        self.seed, self.index, self.org_id = seed, index, org_id
        suffix = str(index // len(FIRST_NAMES)) if index >= len(FIRST_NAMES) else ""
        self.name = FIRST_NAMES[index % len(FIRST_NAMES)] + suffix
        self.subject_id = self._uuid()
        self.device_id = f"dev-{self._uuid()[:13]}"
        self.t = start_ts + self.rng.randint(0, 2 * _SECOND)
        self.last_ts = start_ts - 1
        self.seq = 0
        self.app = APPS[0]
        self.source_file = self.rng.choice(SOURCE_FILES)
        self.host = self.rng.choice(URL_HOSTS)
        self.title = window_title(self.app, self.rng, self.name, self.source_file, self.host)
        self.x, self.y = 960, 540
        self.active = True
        self.next_frame = self.t
        self.frames = 0

    # -- envelope ------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _envelope(self, ts: int, payload: dict[str, Any]) -> Event:
        self.seq += 1
        self.last_ts = max(ts, self.last_ts + 1)
        host = self.host if self.app.kind == "browser" else None
        return {
            "event_id": self._uuid(),
            "org_id": self.org_id,
            "subject_id": self.subject_id,
            "device_id": self.device_id,
            "seq": self.seq,
            "ts": self.last_ts,
            "received_ts": None,
            "app": {"app_name": self.app.app_name, "window_title": self.title, "url_host": host},
            "payload": payload,
            "redactions": [],
            "consent_version": None,
        }

    def _emit(self, payload: dict[str, Any]) -> Iterator[Event]:
        """Screen frames due by now, then `payload` at the current time."""
        while self.active and self.next_frame <= self.t:
            yield self._envelope(self.next_frame, self._frame())
            jitter = self.rng.uniform(-0.5, 0.5)
            self.next_frame += int((FRAME_INTERVAL_S + jitter) * _SECOND)
        yield self._envelope(self.t, payload)

    def _wait(self, seconds: float) -> None:
        self.t += max(1, int(seconds * _SECOND))

    def _frame(self) -> dict[str, Any]:
        self.frames += 1
        content = f"{self.seed}:{self.index}:{self.frames}"
        return {
            "type": "ScreenFrame",
            "frame_id": self._uuid(),
            "ref": "sha256:" + hashlib.sha256(content.encode()).hexdigest(),
            "width": 1920,
            "height": 1080,
            "phash": f"{self.rng.getrandbits(64):016x}",
        }

    # -- timeline ------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        yield from self._emit({"type": "ActivityState", "state": "active"})
        yield from self._emit({"type": "WindowFocus", "previous_app_name": None})
        episodes: dict[str, Callable[[], Iterator[Event]]] = {
            "ide": self._code,
            "terminal": self._command,
            "browser": self._browse,
            "chat": self._chat,
        }
        while True:
            yield from episodes[self.app.kind]()
            draw = self.rng.random()
            if draw < 0.01:
                yield from self._away("locked", self.rng.uniform(10, 40) * 60)
            elif draw < 0.05:
                yield from self._away("idle", self.rng.uniform(1, 8) * 60)
            elif draw < 0.45:
                yield from self._switch()
            self._wait(min(self.rng.expovariate(0.5), 20.0))

    def _switch(self) -> Iterator[Event]:
        previous = self.app
        self.app = self.rng.choices(APPS, weights=APP_WEIGHTS[previous.kind])[0]
        self.host = self.rng.choice(URL_HOSTS)
        self.title = window_title(self.app, self.rng, self.name, self.source_file, self.host)
        yield from self._mouse_to(self.rng.randint(0, 1919), self.rng.randint(0, 1079))
        yield from self._emit({"type": "WindowFocus", "previous_app_name": previous.app_name})

    def _away(self, state: str, seconds: float) -> Iterator[Event]:
        if state == "idle":
            self._wait(IDLE_AFTER_S)
        yield from self._emit({"type": "ActivityState", "state": state})
        self.active = False
        self._wait(seconds)
        self.active = True
        self.next_frame = self.t
        yield from self._emit({"type": "ActivityState", "state": "active"})
        if state == "locked":
            yield from self._emit({"type": "WindowFocus", "previous_app_name": None})

    def _type(self, text: str, *, secure: bool = False) -> Iterator[Event]:
        for chunk in chunk_text(text, self.rng):
            yield from self._emit(_key(text=chunk, count=len(chunk), secure=secure))
            self._wait(len(chunk) * self.rng.uniform(0.06, 0.22))
            if not secure and self.rng.random() < 0.05:
                yield from self._emit(_key(key="Backspace"))
                self._wait(0.15)
        yield from self._emit(_key(key="Enter", secure=secure))
        self._wait(0.2)

    def _code(self) -> Iterator[Event]:
        if self.rng.random() < 0.2:
            self.source_file = self.rng.choice(SOURCE_FILES)
            self.title = window_title(self.app, self.rng, self.name, self.source_file, self.host)
        lines = self.rng.choices(CODE_LINES, k=self.rng.randint(1, 4))
        if self.rng.random() < 0.08:
            lines.append(fill('AWS_ACCESS_KEY_ID = "{aws_key}"', self.rng, self.name))
        for line in lines:
            yield from self._type(line)
        yield from self._emit(_key(key="s", modifiers=["ctrl"]))
        self._wait(0.3)
        diff = "".join(f"+{line}\n" for line in lines)
        deleted = self.rng.randint(0, 12)
        yield from self._emit(
            {
                "type": "IdeEdit",
                "path_hash": _hash16(f"{self.subject_id}:{self.source_file}"),
                "language": LANGUAGES["." + self.source_file.rsplit(".", 1)[1]],
                "chars_inserted": sum(len(line) + 1 for line in lines),
                "chars_deleted": deleted,
                "diff": diff,
            }
        )
        if self.rng.random() < 0.3:
            yield from self._click()

    def _command(self) -> Iterator[Event]:
        command = fill(self.rng.choice(COMMANDS), self.rng, self.name)
        yield from self._type(command)
        self._wait(self.rng.uniform(0.2, 4.0))
        yield from self._emit(
            {
                "type": "TerminalCommand",
                "command": command,
                "exit_code": self.rng.choice((0, 0, 0, 0, 1, 2, None)),
                "cwd_hash": _hash16(f"{self.subject_id}:~/src/candor"),
            }
        )

    def _browse(self) -> Iterator[Event]:
        for _ in range(self.rng.randint(1, 4)):
            yield from self._click()
            for _ in range(self.rng.randint(0, 5)):
                dy = self.rng.choice((-3, -1, 1, 2, 3, 5)) * 40
                yield from self._emit({"type": "Scroll", "dx": 0, "dy": dy})
                self._wait(self.rng.uniform(0.05, 0.6))
            self._wait(self.rng.uniform(0.5, 6.0))
        if self.rng.random() < 0.05:
            yield from self._click()
            yield from self._type(fill("{password}", self.rng, self.name), secure=True)

    def _chat(self) -> Iterator[Event]:
        yield from self._click()
        yield from self._type(fill(self.rng.choice(CHAT_LINES), self.rng, self.name))

    def _mouse_to(self, x: int, y: int) -> Iterator[Event]:
        steps = self.rng.randint(5, 25)
        path = []
        for step in range(1, steps + 1):
            px = self.x + (x - self.x) * step // steps + self.rng.randint(-3, 3)
            py = self.y + (y - self.y) * step // steps + self.rng.randint(-3, 3)
            path.append({"dt_ms": self.rng.randint(8, 20), "x": px, "y": py})
        yield from self._emit({"type": "MouseMove", "path": path})
        self._wait(sum(point["dt_ms"] for point in path) / 1000)
        self.x, self.y = x, y

    def _click(self) -> Iterator[Event]:
        x, y = self.rng.randint(0, 1919), self.rng.randint(0, 1079)
        yield from self._mouse_to(x, y)
        button = self.rng.choices(("left", "right", "middle"), weights=(90, 8, 2))[0]
        double = button == "left" and self.rng.random() < 0.05
        yield from self._emit(
            {"type": "MouseClick", "button": button, "x": x, "y": y, "double": double}
        )
        self._wait(0.15)


def _key(
    *,
    key: str | None = None,
    text: str | None = None,
    modifiers: list[str] | None = None,
    secure: bool = False,
    count: int = 1,
) -> dict[str, Any]:
    return {
        "type": "KeyInput",
        "key": key,
        "text": text,
        "modifiers": modifiers or [],
        "is_secure_field": secure,
        "count": count,
    }


@dataclass(frozen=True, slots=True)
class SimulatedDevice:
    """Who a simulated person is (to set up consent before a run)."""

    subject_id: str
    device_id: str


class Simulator:
    """`people` simulated people from `seed`, starting at `start_ts` (micros)."""

    def __init__(self, people: int, seed: int, start_ts: int, org_id: str = "org-sim") -> None:
        if people < 1:
            raise ValueError("people must be >= 1")
        self.people, self.seed, self.start_ts, self.org_id = people, seed, start_ts, org_id

    @property
    def devices(self) -> list[SimulatedDevice]:
        """Each person's subject and device ids, in person order."""
        persons = self._persons()
        return [SimulatedDevice(p.subject_id, p.device_id) for p in persons]

    def events(self, duration_s: float) -> Iterator[Event]:
        """Every event with start_ts <= ts < start_ts + duration_s, in ts order
        (ties by person). Pure and repeatable: each call starts afresh."""
        end = self.start_ts + int(duration_s * _SECOND)
        streams = [person.events() for person in self._persons()]
        merged = heapq.merge(*streams, key=lambda event: event["ts"])
        return itertools.takewhile(lambda event: event["ts"] < end, merged)

    def _persons(self) -> list[_Person]:
        return [_Person(self.seed, i, self.start_ts, self.org_id) for i in range(self.people)]


class EventSink(Protocol):
    """Where `run_simulation` publishes (a `CaptureClient` is one)."""

    def publish(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class SimulationProgress:
    """How far a run got: events published, wall seconds, achieved rate and the
    event time of the last event."""

    events: int
    elapsed_s: float
    rate_per_s: float
    last_event_ts: int | None


@dataclass
class SentEvents:
    """The event ids a run handed to its sink, per device id (what landed
    downstream is checked against these, not against a time window)."""

    by_device: dict[str, list[str]] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Record one published event."""
        self.by_device.setdefault(str(event["device_id"]), []).append(str(event["event_id"]))

    def event_ids(self, devices: Iterable[str] | None = None) -> set[str]:
        """The recorded event ids of `devices` (None: of every device)."""
        chosen = self.by_device if devices is None else devices
        return {eid for d in chosen for eid in self.by_device.get(d, ())}

    def count(self) -> int:
        """How many events were recorded."""
        return sum(len(ids) for ids in self.by_device.values())


def backdated_start(
    people: int, seed: int, events: int, now_ts: int, org_id: str = "org-sim"
) -> int:
    """The start_ts from which `events` simulated events end at about `now_ts`.

    People produce events at their own pace (about 1-2 per second each); a run
    asked for more events per wall-clock second than that covers more simulated
    time than wall time. Starting in the past keeps every event time at or
    before now, as real capture is, instead of running into the future."""
    sample_s, sampled = 3 * 3600.0, min(people, 4)  # a long sample: pace includes idle spells
    sample = sum(1 for _ in Simulator(sampled, seed, 0, org_id).events(sample_s))
    per_second = max(sample / sample_s * people / sampled, 1e-9)
    return now_ts - int(events / per_second * _SECOND)


def run_simulation(
    simulator: Simulator,
    sink: EventSink,
    *,
    duration_s: float,
    rate: float | None = None,
    burst: float | None = None,
    progress_callback: Callable[[SimulationProgress], None] | None = None,
    progress_interval_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    sent: SentEvents | None = None,
) -> SimulationProgress:
    """Publish `simulator.events(duration_s)` to `sink`, at most `rate` events
    per wall-clock second (as fast as possible if None; bursts of up to
    `burst` events, default rate/10). Calls `progress_callback` every
    `progress_interval_s` and once at the end; an exception it raises ends the
    run there. Records every published event in `sent` when given. Blocks;
    returns the final progress."""
    started = clock()
    bucket = None if rate is None else TokenBucket(rate, burst or max(1.0, rate / 10), started)
    count, last_ts, next_report = 0, None, started + progress_interval_s

    def progress(now: float) -> SimulationProgress:
        elapsed = now - started
        return SimulationProgress(count, elapsed, count / elapsed if elapsed > 0 else 0.0, last_ts)

    for event in simulator.events(duration_s):
        if bucket is not None:
            wait = bucket.reserve(clock())
            if wait > 0:
                sleep(wait)
        sink.publish(event)
        if sent is not None:
            sent.add(event)
        count, last_ts = count + 1, event["ts"]
        now = clock()
        if progress_callback is not None and now >= next_report:
            progress_callback(progress(now))
            next_report = now + progress_interval_s
    final = progress(clock())
    if progress_callback is not None:
        progress_callback(final)
    return final
