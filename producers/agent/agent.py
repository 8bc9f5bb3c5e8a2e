"""The desktop agent's loop: listeners' events through the `Recorder` into a
`CaptureClient`.

Listener threads only enqueue (`submit`); one loop thread owns the recorder
and the client (which is single-threaded), polls the focused window and the
pause switch every `probe_interval_s`, and serves the client's delivery
callbacks and spool replay between events. Event time is stamped when the
listener sees the input, not when the loop gets to it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from producers.agent.frames import CapturedFrame, write_outbox
from producers.agent.privacy import PauseSwitch
from producers.agent.recorder import Capture, InputEvent, Recorder
from schemas.clock import now_micros

_log = logging.getLogger(__name__)


class CaptureSink(Protocol):
    """What the agent needs of a `CaptureClient`."""

    def capture(
        self, payload: Mapping[str, Any], app: Mapping[str, Any], ts: int | None = None
    ) -> str: ...

    def poll(self, timeout: float = 0.0) -> int: ...


class Focus(Protocol):
    """What the agent needs of `producers.agent.x11.FocusProbe`."""

    def current(self) -> tuple[str, str | None]: ...


class Frames(Protocol):
    """What the agent needs of `producers.agent.frames.FrameCapturer`."""

    def capture(self, now: int, *, action: bool = True) -> CapturedFrame | None: ...


# Payloads after which the screen is captured: a click, a typing pause (a
# flushed KeyInput chunk), a focus change.
_FRAME_TRIGGERS = frozenset({"MouseClick", "KeyInput", "WindowFocus"})


class DesktopAgent:
    """Runs `recorder` over queued input until `stop()`; publishes to `sink`.

    With `frames` and `frame_outbox`, screen frames are captured after actions
    and when idle (never while paused): bytes to the outbox, `ScreenFrame`
    events to `sink`."""

    def __init__(
        self,
        sink: CaptureSink,
        recorder: Recorder,
        focus: Focus,
        pause: PauseSwitch,
        *,
        probe_interval_s: float = 0.2,
        clock: Callable[[], int] = now_micros,
        frames: Frames | None = None,
        frame_outbox: Path | None = None,
    ) -> None:
        self._sink = sink
        self._recorder = recorder
        self._focus = focus
        self._pause = pause
        self._probe_interval_s = probe_interval_s
        self._clock = clock
        self._queue: queue.SimpleQueue[tuple[InputEvent, int]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.captured = 0
        self._frames = frames if frame_outbox is not None else None
        self._frame_outbox = frame_outbox
        self._app: Mapping[str, Any] | None = None
        self.frames = 0

    def submit(self, event: InputEvent) -> None:
        """Enqueue `event`, stamped now. Thread-safe; never blocks."""
        self._queue.put((event, self._clock()))

    def stop(self) -> None:
        """Ask `run` to flush and return. Thread-safe (signal handlers call it)."""
        self._stopping.set()

    def run(self) -> None:
        """Capture until `stop()`; then flush what is pending. Blocks the calling thread."""
        app, title = self._focus.current()
        self._publish(self._recorder.start(self._clock(), app, title))
        next_probe = 0.0
        while not self._stopping.is_set():
            try:
                event, ts = self._queue.get(timeout=self._probe_interval_s / 2)
            except queue.Empty:
                pass
            else:
                self._publish(self._recorder.feed(event, ts))
            now = self._clock()
            if now >= next_probe:
                next_probe = now + self._probe_interval_s * 1e6
                # Input already queued happened in the old window: drain it first.
                self._drain()
                app, title = self._focus.current()
                self._publish(self._recorder.focus(app, title, now))
                paused = self._pause.paused()
                self._publish(self._recorder.tick(now, paused=paused))
                if not paused:
                    self._frame(action=False)
            self._sink.poll(0)
        self._drain()
        self._publish(self._recorder.flush())

    def _drain(self) -> None:
        while True:
            try:
                event, ts = self._queue.get_nowait()
            except queue.Empty:
                return
            self._publish(self._recorder.feed(event, ts))

    def _publish(self, captures: list[Capture]) -> None:
        triggered = False
        for capture in captures:
            self._sink.capture(capture.payload, capture.app, ts=capture.ts)
            self.captured += 1
            self._app = capture.app
            triggered = triggered or capture.payload.get("type") in _FRAME_TRIGGERS
        if triggered:
            self._frame(action=True)

    def _frame(self, *, action: bool) -> None:
        if self._frames is None or self._frame_outbox is None or self._app is None:
            return
        frame = self._frames.capture(self._clock(), action=action)
        if frame is None:
            return
        write_outbox(self._frame_outbox, frame)
        self._sink.capture(frame.payload, self._app, ts=frame.ts)
        self.captured += 1
        self.frames += 1
