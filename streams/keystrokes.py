"""What one KeyInput payload means for typing: characters typed, backspaces,
or a shortcut chord. Pure; used by the action reducer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHORD_MODIFIERS = frozenset(("ctrl", "alt", "meta"))
TEXT_KEYS = {"Enter": "\n", "Tab": "\t", "Space": " "}
MODIFIER_KEYS = frozenset(
    ("shift", "control", "ctrl", "alt", "altgraph", "meta", "os", "super", "capslock", "fn")
)


def classify_key(payload: Mapping[str, Any]) -> tuple[str | None, int, str | None]:
    """Return ``(typed chars, backspaces, chord)`` of a KeyInput payload.

    ``chars`` is None for a shortcut (then ``chord`` is set, or None when the
    key was withheld); "" for a keystroke that types nothing (withheld
    content, a lone modifier key press).
    """
    modifiers = sorted(set(payload.get("modifiers") or ()))
    key: str | None = payload.get("key")
    text: str | None = payload.get("text")
    count = max(1, int(payload.get("count", 1)))
    if key is not None and key.lower() in MODIFIER_KEYS:
        return "", 0, None
    if not CHORD_MODIFIERS.intersection(modifiers):
        if text is not None:
            return text, 0, None
        if key is None:
            return "", 0, None
        if key == "Backspace":
            return None, count, None
        if len(key) == 1:
            return key * count, 0, None
        if key in TEXT_KEYS and not (key == "Tab" and "shift" in modifiers):
            return TEXT_KEYS[key] * count, 0, None
    return None, 0, (None if key is None else "+".join([*modifiers, key.lower()]))
