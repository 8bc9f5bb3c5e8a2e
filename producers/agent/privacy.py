"""What the desktop agent keeps to itself, decided on the device (pure).

* **Paused**: nothing at all is captured (`PauseSwitch`: a control file that
  exists, or a signal flipping the switch).
* **Excluded apps** (password managers by default): keystrokes are still
  counted but sent with `key`/`text` None and `is_secure_field` True, and the
  window title is not sent (a password manager's title names the vault).
* **Secure fields**: X11 does not say when a password field has focus, so
  the agent treats a window whose title mentions a password, passphrase or
  PIN prompt as one: same treatment as an excluded app's keys.
* **Screen frames** are off unless switched on.

The stream applies consent and redaction again; this is the first line,
the one that keeps content from ever leaving the machine.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_EXCLUDED_APPS = (
    "keepassxc",
    "keepass",
    "1password",
    "bitwarden",
    "lastpass",
    "dashlane",
    "pinentry",
    "seahorse",
    "gnome-keyring",
    "kwalletmanager",
)
_SECURE_TITLE = re.compile(r"pass(word|phrase)|\bpin\b|pinentry|unlock|sudo", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PrivacyPolicy:
    """The agent's on-device rules. App names compare case-insensitively; an
    excluded name matches when it is contained in the app name
    ("org.keepassxc.KeePassXC" is excluded by "keepassxc")."""

    excluded_apps: tuple[str, ...] = DEFAULT_EXCLUDED_APPS
    screen_frames: bool = False
    secure_title: re.Pattern[str] = field(default=_SECURE_TITLE)

    @classmethod
    def with_extra(cls, apps: Iterable[str], *, screen_frames: bool = False) -> PrivacyPolicy:
        """The default policy plus more excluded `apps`."""
        extra = tuple(app.casefold() for app in apps if app)
        return cls(DEFAULT_EXCLUDED_APPS + extra, screen_frames)

    def is_excluded(self, app_name: str) -> bool:
        """Whether keystroke content and titles of `app_name` stay on the device."""
        folded = app_name.casefold()
        return any(name in folded for name in self.excluded_apps)

    def is_secure(self, app_name: str, window_title: str | None) -> bool:
        """Whether key content typed now must not be sent."""
        if self.is_excluded(app_name):
            return True
        return window_title is not None and bool(self.secure_title.search(window_title))

    def visible_title(self, app_name: str, window_title: str | None) -> str | None:
        """The window title to send for `app_name` (None for excluded apps)."""
        return None if self.is_excluded(app_name) else window_title


class PauseSwitch:
    """Paused while the control file exists or after `pause()` until `resume()`.

    Thread-safe (signal handlers flip it while the agent loop reads it);
    `paused()` stats the control file, so call it a few times a second, not
    per event.
    """

    def __init__(self, control_file: Path | None = None) -> None:
        self.control_file = control_file
        self._flag = threading.Event()

    def pause(self) -> None:
        """Stop capturing until `resume`."""
        self._flag.set()

    def resume(self) -> None:
        """Capture again (unless the control file still exists)."""
        self._flag.clear()

    def paused(self) -> bool:
        """Whether capture is paused right now."""
        if self._flag.is_set():
            return True
        return self.control_file is not None and self.control_file.exists()
