"""The X11 side of the desktop agent: what has the focus, and input listeners.

Input comes from pynput, which on Linux records the X server's input with
the XRecord extension, so it sees every client's keys and pointer (a real
desktop, Xvfb, xdotool-synthesised input alike) without grabbing anything.
The focused window comes from python-xlib (a pynput dependency):
`GetInputFocus`, then up the window tree to the first window with a
WM_CLASS. That works without a window manager, unlike xdotool's
`getactivewindow` (which needs `_NET_ACTIVE_WINDOW`).

Imported only by the agent's entry point: importing pynput needs a display.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from producers.agent.keyboard import Key, translate_key
from producers.agent.recorder import Clicked, InputEvent, KeyDown, KeyUp, PointerMoved, Scrolled
from schemas.extras import MissingExtra

try:
    from Xlib import X, display, error
except ModuleNotFoundError as err:  # the core install runs without the agent extra
    raise MissingExtra.of(err, "agent", "the desktop agent's X11 capture") from err

_log = logging.getLogger(__name__)

Submit = Callable[[InputEvent], None]
_BUTTONS = {"left": "left", "right": "right", "middle": "middle"}


class FocusProbe:
    """Reads the focused window's app name (WM_CLASS instance) and title.

    `current()` never raises for a vanished or odd window: it answers
    ("unknown", None) instead. Opens its own X connection (`close` it).
    """

    def __init__(self, display_name: str | None = None) -> None:
        self._display = display.Display(display_name)
        self._net_wm_name = self._display.intern_atom("_NET_WM_NAME")
        self._utf8 = self._display.intern_atom("UTF8_STRING")

    def current(self) -> tuple[str, str | None]:
        """(app name, window title) of the window with the input focus."""
        try:
            window: Any = self._display.get_input_focus().focus
            for _ in range(32):
                if window in (X.NONE, X.PointerRoot) or isinstance(window, int):
                    break
                wm_class = window.get_wm_class()
                if wm_class:
                    return wm_class[0] or wm_class[1], self._title(window)
                window = window.query_tree().parent
        except (error.XError, error.ConnectionClosedError) as err:
            _log.debug("focus probe failed: %s", err)
        return "unknown", None

    def _title(self, window: Any) -> str | None:
        prop = window.get_full_property(self._net_wm_name, self._utf8)
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return name or None

    def close(self) -> None:
        """Close the X connection."""
        self._display.close()


def _key_of(raw: Any) -> Key | None:
    name = getattr(raw, "name", None)
    if name is not None:
        return translate_key(str(name), None)
    return translate_key(None, getattr(raw, "char", None))


class InputListeners:
    """pynput keyboard and mouse listeners feeding `submit` from their threads."""

    def __init__(self, submit: Submit) -> None:
        try:
            from pynput import keyboard, mouse  # needs a display: import on use
        except ModuleNotFoundError as err:
            raise MissingExtra.of(err, "agent", "the desktop agent's input capture") from err

        def press(raw: Any) -> None:
            key = _key_of(raw)
            if key is not None:
                submit(KeyDown(key))

        def release(raw: Any) -> None:
            key = _key_of(raw)
            if key is not None:
                submit(KeyUp(key))

        def move(x: int, y: int) -> None:
            submit(PointerMoved(int(x), int(y)))

        def click(x: int, y: int, button: Any, pressed: bool) -> None:
            name = _BUTTONS.get(getattr(button, "name", ""))
            if pressed and name is not None:
                submit(Clicked(int(x), int(y), name))

        def scroll(_x: int, _y: int, dx: int, dy: int) -> None:
            submit(Scrolled(int(dx), int(dy)))

        self._keyboard = keyboard.Listener(on_press=press, on_release=release)
        self._mouse = mouse.Listener(on_move=move, on_click=click, on_scroll=scroll)

    def start(self) -> None:
        """Start both listeners and wait until they record."""
        self._keyboard.start()
        self._mouse.start()
        self._keyboard.wait()
        self._mouse.wait()

    def stop(self) -> None:
        """Stop both listeners."""
        self._keyboard.stop()
        self._mouse.stop()
