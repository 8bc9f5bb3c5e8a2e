"""What one KeyInput payload means for typing: characters typed, backspaces,
or a shortcut chord. Pure; used by the action reducer."""

from __future__ import annotations

import re
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
    held = payload.get("modifiers")
    # most keystrokes hold no modifier: skip the set, the sort and the intersection
    modifiers = sorted(set(held)) if held else []
    key: str | None = payload.get("key")
    text: str | None = payload.get("text")
    count = max(1, int(payload.get("count", 1)))
    if key is not None and key.lower() in MODIFIER_KEYS:
        return "", 0, None
    if not modifiers or not CHORD_MODIFIERS.intersection(modifiers):
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


TYPED = "typed_input"
"""Key of a clean event dict that holds the KeyInput payload *before* its typed
content was withheld (:func:`withhold_typed`). In memory only: the Avro writer
writes the contract's fields and nothing else, so it never reaches
``capture.clean``; the action reducer of the same worker reads it (:func:`typed_payload`)
to merge the burst and redact it whole."""

KEY_CLASS_CHARACTER = "Character"
"""What a per-event row holds in ``key`` for a key that types one character."""


_NAMED_KEY = re.compile(r"[A-Z][A-Za-z0-9_]+")


def _is_named_key(key: str) -> bool:
    """Enter, Backspace, ArrowLeft, F5, Shift ...: a key that names itself rather
    than the character it types (which is one code point, or a few for a
    composed character such as e + combining acute)."""
    return key.lower() in MODIFIER_KEYS or bool(_NAMED_KEY.fullmatch(key))


def withhold_typed(event: dict[str, Any]) -> dict[str, Any]:
    """Return ``event`` with no typed text in its KeyInput payload.

    A chunk of typed text (``text``) is cleared to None and a key that types a
    character (any key that is not a named key, held without ctrl/alt/meta)
    becomes :data:`KEY_CLASS_CHARACTER`. Named keys (Enter, Backspace, arrows ...),
    shortcuts (ctrl+c) and counts stay: they are not typed content. The original
    payload is kept under :data:`TYPED` for the action reducer, which redacts the
    merged burst, so a secret typed over several events can never be read off
    per-event rows. Not mutating; returns the same object when there is nothing
    to withhold (any other payload type, or content already withheld).
    """
    payload = event["payload"]
    if payload.get("type") != "KeyInput":
        return event
    key: str | None = payload.get("key")
    text: str | None = payload.get("text")
    chord = bool(CHORD_MODIFIERS.intersection(payload.get("modifiers") or ()))
    typed_key = key is not None and not chord and not _is_named_key(key)
    if text is None and not typed_key:
        return event
    per_event = dict(payload)
    per_event["text"] = None
    if typed_key:
        per_event["key"] = KEY_CLASS_CHARACTER
    out = dict(event)
    out["payload"] = per_event
    out[TYPED] = payload
    return out


def typed_payload(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the KeyInput payload with its typed content: the one kept by
    :func:`withhold_typed` when there is one, else the event's payload."""
    kept = event.get(TYPED)
    # dict first: the kept payload is one, and a check against the Mapping ABC is slow
    if isinstance(kept, (dict, Mapping)):
        return kept
    payload: Mapping[str, Any] = event["payload"]
    return payload
