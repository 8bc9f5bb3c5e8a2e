"""What the desktop agent's tests on a real X server share: they need Xvfb,
xdotool and xmessage (Debian packages xvfb, xdotool, x11-utils); the private
display itself is the ``display`` fixture (conftest.py)."""

from __future__ import annotations

import shutil

import pytest

NEEDS_X11 = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("Xvfb", "xdotool", "xmessage")),
    reason="needs Debian packages xvfb, xdotool, x11-utils",
)
