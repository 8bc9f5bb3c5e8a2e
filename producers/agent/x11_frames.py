"""The X11 side of screen frames: grabbing the screen (mss) and finding the
windows of excluded apps (python-xlib).

`ExcludedWindows` walks the root window's viewable children (with or without
a reparenting window manager: a top-level without WM_CLASS is searched one
level down for the client window) and returns, for every window whose
WM_CLASS names an excluded app, the rectangle of its top-level window in root
coordinates - decorations included. Imported only by the agent's entry point.
"""

from __future__ import annotations

import logging
from typing import Any

from PIL import Image

from producers.agent.frames import Rect
from producers.agent.privacy import PrivacyPolicy
from schemas.extras import MissingExtra

try:
    import mss
    from Xlib import X, display, error
except ModuleNotFoundError as err:  # the core install runs without the agent extra
    raise MissingExtra.of(err, "agent", "the desktop agent's screen frames") from err

_log = logging.getLogger(__name__)


class ScreenGrabber:
    """Grabs the whole X screen (every monitor) as an RGB image. Own X connection."""

    def __init__(self, display_name: str | None = None) -> None:
        self._mss = mss.mss(display=display_name) if display_name else mss.mss()

    def grab(self) -> Image.Image:
        """The screen now. Blocks for the grab (milliseconds)."""
        shot = self._mss.grab(self._mss.monitors[0])
        return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")

    def close(self) -> None:
        self._mss.close()


class ExcludedWindows:
    """Rectangles of the excluded apps' visible windows. Own X connection."""

    def __init__(self, policy: PrivacyPolicy, display_name: str | None = None) -> None:
        self._policy = policy
        self._display = display.Display(display_name)
        self._root = self._display.screen().root

    def rects(self) -> list[Rect]:
        """Every viewable top-level window of an excluded app, as (x, y, w, h).

        A window that vanishes while being read is skipped; an X error on the
        root itself answers the whole screen (frame fully black) rather than
        risk showing an excluded window."""
        try:
            children = self._root.query_tree().children
        except (error.XError, error.ConnectionClosedError) as err:
            _log.warning("window tree unreadable (%s): blacking out the frame", err)
            geometry = self._root.get_geometry()
            return [(0, 0, int(geometry.width), int(geometry.height))]
        found: list[Rect] = []
        for window in children:
            try:
                if window.get_attributes().map_state != X.IsViewable:
                    continue
                if not self._excluded(window, depth=2):
                    continue
                geometry = window.get_geometry()
                origin = window.translate_coords(self._root, 0, 0)
                border = int(geometry.border_width)
                found.append(
                    (
                        -int(origin.x) - border,
                        -int(origin.y) - border,
                        int(geometry.width) + 2 * border,
                        int(geometry.height) + 2 * border,
                    )
                )
            except (error.XError, error.ConnectionClosedError):
                continue
        return found

    def _excluded(self, window: Any, depth: int) -> bool:
        wm_class = window.get_wm_class()
        if wm_class:
            return any(self._policy.is_excluded(name) for name in wm_class if name)
        if depth <= 0:
            return False
        return any(self._excluded(child, depth - 1) for child in window.query_tree().children)

    def close(self) -> None:
        self._display.close()
