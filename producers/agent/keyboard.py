"""Keystrokes to KeyInput payloads (pure; no X11, no pynput).

Typing is merged into text chunks, so one KeyInput carries a run of
printable characters (`text`, `count` = characters) rather than one event
per key: fewer events, and the stream's redaction sees whole words. A chunk
ends at a non-printable key (Enter, Backspace, arrows…), a chord (a
printable key while ctrl, alt or meta is held), `max_chunk` characters, a
pause of `flush_after_s`, a focus change (`flush`), or the agent pausing.

Chords and special keys become one KeyInput each with `key` set
("Enter", "s" with modifiers ["ctrl"]), `text` None, `count` 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODIFIERS: dict[str, str] = {
    "ctrl": "ctrl",
    "ctrl_l": "ctrl",
    "ctrl_r": "ctrl",
    "alt": "alt",
    "alt_l": "alt",
    "alt_r": "alt",
    "alt_gr": "alt",
    "shift": "shift",
    "shift_l": "shift",
    "shift_r": "shift",
    "cmd": "meta",
    "cmd_l": "meta",
    "cmd_r": "meta",
    "super": "meta",
}
_CHORD_MODIFIERS = frozenset({"ctrl", "alt", "meta"})
_MODIFIER_ORDER = ("ctrl", "alt", "shift", "meta")
_NAMES = {
    "enter": "Enter",
    "backspace": "Backspace",
    "tab": "Tab",
    "esc": "Escape",
    "delete": "Delete",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "home": "Home",
    "end": "End",
    "page_up": "PageUp",
    "page_down": "PageDown",
    "insert": "Insert",
    "caps_lock": "CapsLock",
    "space": "Space",
}


@dataclass(frozen=True, slots=True)
class Key:
    """One key as the agent sees it: a printable `char`, or a `name` for the
    rest ("Enter", "F5", or a modifier "ctrl"/"alt"/"shift"/"meta")."""

    name: str | None = None
    char: str | None = None

    @property
    def modifier(self) -> str | None:
        """The modifier this key is, if any."""
        return self.name if self.name in _MODIFIER_ORDER else None


def translate_key(special: str | None, char: str | None) -> Key | None:
    """The `Key` for a listener's key: `special` is the name of a special key
    (pynput's ``Key.<name>``: "ctrl_l", "enter", "space", "f5"…), `char` the
    character of an ordinary key. None when neither says anything usable
    (dead keys, unmapped keycodes)."""
    if special is not None:
        if special in MODIFIERS:
            return Key(name=MODIFIERS[special])
        if special == "space":
            return Key(char=" ")
        if special in _NAMES:
            return Key(name=_NAMES[special])
        if len(special) > 1 and special[0] == "f" and special[1:].isdigit():
            return Key(name=special.upper())
        return Key(name=special)
    if char is not None and len(char) == 1:
        if char.isprintable():
            return Key(char=char)
        if 1 <= ord(char) <= 26:  # ctrl+letter arrives as a control character on some layouts
            return Key(char=chr(ord(char) + 96))
    return None


def key_payload(
    *,
    key: str | None = None,
    text: str | None = None,
    modifiers: list[str] | None = None,
    count: int = 1,
    secure: bool = False,
) -> dict[str, Any]:
    """A KeyInput payload; `secure` drops `key` and `text` and flags the field."""
    return {
        "type": "KeyInput",
        "key": None if secure else key,
        "text": None if secure else text,
        "modifiers": modifiers or [],
        "is_secure_field": secure,
        "count": count,
    }


@dataclass(frozen=True, slots=True)
class Keystroke:
    """A KeyInput payload without its privacy decision, and its event time."""

    ts: int
    key: str | None
    text: str | None
    modifiers: list[str]
    count: int


class KeyChunker:
    """Merges key presses into `Keystroke`s. Not thread-safe; `now`/`ts` are micros."""

    def __init__(self, *, max_chunk: int = 32, flush_after_s: float = 1.0) -> None:
        if max_chunk < 1:
            raise ValueError("max_chunk must be >= 1")
        self.max_chunk = max_chunk
        self.flush_after_us = int(flush_after_s * 1_000_000)
        self._held: set[str] = set()
        self._text: list[str] = []
        self._first_ts = 0
        self._last_ts = 0

    def press(self, key: Key, ts: int) -> list[Keystroke]:
        """Keystrokes completed by pressing `key` at `ts` (possibly none yet)."""
        if key.modifier is not None:
            self._held.add(key.modifier)
            return []
        chord = self._held & _CHORD_MODIFIERS
        if key.char is not None and not chord:
            out = self.flush() if len(self._text) >= self.max_chunk else []
            if not self._text:
                self._first_ts = ts
            self._text.append(key.char)
            self._last_ts = ts
            return out
        out = self.flush()
        name = key.char.lower() if key.char is not None else key.name
        out.append(Keystroke(ts, name, None, self._modifiers(), 1))
        return out

    def release(self, key: Key) -> None:
        """Note that `key` is up (only modifiers matter)."""
        if key.modifier is not None:
            self._held.discard(key.modifier)

    def tick(self, now: int) -> list[Keystroke]:
        """The pending chunk, if typing paused for `flush_after_s`."""
        if self._text and now - self._last_ts >= self.flush_after_us:
            return self.flush()
        return []

    def flush(self) -> list[Keystroke]:
        """The pending chunk now (focus change, pause, shutdown)."""
        if not self._text:
            return []
        text = "".join(self._text)
        self._text = []
        return [Keystroke(self._first_ts, None, text, [], len(text))]

    def reset(self) -> None:
        """Forget pending text and held modifiers (after a pause: input unseen)."""
        self._text = []
        self._held.clear()

    def _modifiers(self) -> list[str]:
        return [name for name in _MODIFIER_ORDER if name in self._held]
