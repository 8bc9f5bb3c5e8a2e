"""The desktop agent's pure core: input events in, capture payloads out.

`Recorder` takes what the X11 listeners saw (`KeyDown`, `KeyUp`,
`PointerMoved`, `Clicked`, `Scrolled`), the focused window (`focus`), the
pause state and the time (`tick`), and returns `Capture`s: a contract
payload, the app context it happened in and its event time. It applies the
`PrivacyPolicy` and merges input (typing into chunks, pointer motion into
paths) so the agent sends a few events per second, not one per pixel.

Everything is in microseconds since the epoch; nothing here blocks or
touches X11, Kafka or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from producers.agent.keyboard import Key, KeyChunker, Keystroke, key_payload
from producers.agent.privacy import PrivacyPolicy

UNKNOWN_APP = "unknown"


@dataclass(frozen=True, slots=True)
class KeyDown:
    key: Key


@dataclass(frozen=True, slots=True)
class KeyUp:
    key: Key


@dataclass(frozen=True, slots=True)
class PointerMoved:
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Clicked:
    x: int
    y: int
    button: str  # "left" | "right" | "middle"


@dataclass(frozen=True, slots=True)
class Scrolled:
    dx: int
    dy: int


InputEvent = KeyDown | KeyUp | PointerMoved | Clicked | Scrolled


@dataclass(frozen=True, slots=True)
class Capture:
    """One event for `CaptureClient.capture(payload, app, ts)`."""

    payload: dict[str, Any]
    app: dict[str, Any]
    ts: int


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    """Merging and idle thresholds."""

    path_max_points: int = 64
    path_flush_after_s: float = 0.15
    double_click_s: float = 0.4
    double_click_px: int = 4
    idle_after_s: float = 60.0
    max_chunk: int = 32
    text_flush_after_s: float = 1.0


class Recorder:
    """Turns one desktop's input into capture payloads. Not thread-safe."""

    def __init__(self, policy: PrivacyPolicy, config: RecorderConfig | None = None) -> None:
        self.policy = policy
        self.config = config or RecorderConfig()
        self._keys = KeyChunker(
            max_chunk=self.config.max_chunk, flush_after_s=self.config.text_flush_after_s
        )
        self._app = UNKNOWN_APP
        self._title: str | None = None
        self._path: list[dict[str, int]] = []
        self._path_start = self._path_last = 0
        self._last_click: tuple[int, str, int, int] | None = None
        self._last_input: int | None = None
        self._state: str | None = None
        self._paused = False

    @property
    def app_name(self) -> str:
        """The app that has the focus as far as the recorder knows."""
        return self._app

    def start(self, ts: int, app_name: str, title: str | None) -> list[Capture]:
        """The opening events: ActivityState active and the focused window."""
        self._app, self._title = app_name or UNKNOWN_APP, title
        self._last_input = ts
        self._state = "active"
        return [
            self._capture({"type": "ActivityState", "state": "active"}, ts),
            self._capture({"type": "WindowFocus", "previous_app_name": None}, ts),
        ]

    def feed(self, event: InputEvent, ts: int) -> list[Capture]:
        """The captures completed by `event` at `ts` (none while paused)."""
        if self._paused:
            return []
        out = self._wake(ts)
        if isinstance(event, KeyDown):
            out += self._pending_path()
            out += [self._key(k) for k in self._keys.press(event.key, ts)]
        elif isinstance(event, KeyUp):
            self._keys.release(event.key)
        elif isinstance(event, PointerMoved):
            out += self._move(event, ts)
        elif isinstance(event, Clicked):
            out += self._pending_path() + self._pending_text()
            out.append(self._click(event, ts))
        else:
            out += self._pending_path() + self._pending_text()
            out.append(self._capture({"type": "Scroll", "dx": event.dx, "dy": event.dy}, ts))
        return out

    def focus(self, app_name: str, title: str | None, ts: int) -> list[Capture]:
        """Captures for the focused window now being `app_name`/`title`: a
        WindowFocus when the app or title changed (after flushing what was
        typed in the old one), nothing otherwise or while paused."""
        app_name = app_name or UNKNOWN_APP
        if (app_name, title) == (self._app, self._title) or self._paused:
            self._app, self._title = app_name, title
            return []
        out = self._pending_path() + self._pending_text()
        previous = self._app
        self._app, self._title = app_name, title
        out.append(self._capture({"type": "WindowFocus", "previous_app_name": previous}, ts))
        return out

    def tick(self, now: int, *, paused: bool = False) -> list[Capture]:
        """Time passing: flush a resting pointer path or typing chunk, go idle
        after `idle_after_s` without input, and apply pause changes (pausing
        first flushes what was captured before it; resuming says active)."""
        if paused != self._paused:
            if paused:
                out = self.flush()
                self._keys.reset()
                self._paused = True
                return out
            self._paused = False
            self._last_input = now
            self._state = "active"
            return [self._capture({"type": "ActivityState", "state": "active"}, now)]
        if self._paused:
            return []
        out = [self._key(k) for k in self._keys.tick(now)]
        if self._path and now - self._path_last >= self.config.path_flush_after_s * 1e6:
            out += self._pending_path()
        idle_us = self.config.idle_after_s * 1e6
        last = self._last_input
        if self._state == "active" and last is not None and now - last >= idle_us:
            out += self.flush()
            self._state = "idle"
            out.append(self._capture({"type": "ActivityState", "state": "idle"}, now))
        return out

    def flush(self) -> list[Capture]:
        """Everything pending (shutdown, pause)."""
        return self._pending_path() + self._pending_text()

    # -- internals -----------------------------------------------------------

    def _wake(self, ts: int) -> list[Capture]:
        self._last_input = ts
        if self._state == "idle":
            self._state = "active"
            return [self._capture({"type": "ActivityState", "state": "active"}, ts)]
        return []

    def _app_context(self) -> dict[str, Any]:
        title = self.policy.visible_title(self._app, self._title)
        return {"app_name": self._app, "window_title": title, "url_host": None}

    def _capture(self, payload: dict[str, Any], ts: int) -> Capture:
        return Capture(payload, self._app_context(), ts)

    def _key(self, stroke: Keystroke) -> Capture:
        secure = self.policy.is_secure(self._app, self._title)
        payload = key_payload(
            key=stroke.key,
            text=stroke.text,
            modifiers=stroke.modifiers,
            count=stroke.count,
            secure=secure,
        )
        return self._capture(payload, stroke.ts)

    def _pending_text(self) -> list[Capture]:
        return [self._key(k) for k in self._keys.flush()]

    def _move(self, event: PointerMoved, ts: int) -> list[Capture]:
        if not self._path:
            self._path_start = self._path_last = ts
        dt_ms = max(0, (ts - self._path_last) // 1000)
        self._path.append({"dt_ms": dt_ms, "x": event.x, "y": event.y})
        self._path_last = ts
        if len(self._path) >= self.config.path_max_points:
            return self._pending_path()
        return []

    def _pending_path(self) -> list[Capture]:
        if not self._path:
            return []
        path, self._path = self._path, []
        return [self._capture({"type": "MouseMove", "path": path}, self._path_start)]

    def _click(self, event: Clicked, ts: int) -> Capture:
        double = False
        if self._last_click is not None:
            last_ts, button, x, y = self._last_click
            double = (
                button == event.button
                and ts - last_ts <= self.config.double_click_s * 1e6
                and abs(x - event.x) <= self.config.double_click_px
                and abs(y - event.y) <= self.config.double_click_px
            )
        # A double click consumes its first click: a third one starts afresh.
        self._last_click = None if double else (ts, event.button, event.x, event.y)
        payload = {
            "type": "MouseClick",
            "button": event.button,
            "x": event.x,
            "y": event.y,
            "double": double,
        }
        return self._capture(payload, ts)
