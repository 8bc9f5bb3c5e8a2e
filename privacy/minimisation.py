"""Data minimisation: clear the content fields a person has not consented to.

The contract's content fields and the scope each needs:

=============================  ===================  ==================
field                          scope                cleared to
=============================  ===================  ==================
``KeyInput.key`` / ``.text``   keystroke_content    ``None``
``app.window_title``           window_titles        ``None``
``app.url_host``               window_titles        ``None``
``ScreenFrame.ref`` / ``.phash``  screen_frames     ``""``
``IdeEdit.diff``               ide_content          ``None``
``TerminalCommand.command``    terminal_content     ``""``
=============================  ===================  ==================

Counts and shapes stay (``KeyInput.count``, ``modifiers``, ``IdeEdit.chars_*``,
``ScreenFrame`` size, ``TerminalCommand.exit_code``) and so does ``app.app_name``:
they are activity metadata. Window titles and URL hosts are content (document
names, mail subjects, chat partners, search terms): without ``window_titles``
they are cleared here, in the worker's first step, whatever else is granted; a
policy granted before that scope existed holds ``activity_metadata`` only and
therefore loses them (capture under an old grant shrinks, never grows).

Independently of consent, text typed into a secure field (``is_secure_field``) is
never kept: ``key`` and ``text`` are cleared and ``"secure_field"`` is appended to
the event's redaction trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privacy.scope import Scope
from schemas.errors import UnknownPayloadType

__all__ = ["CONTENT_FIELDS", "SECURE_FIELD_RULE", "UnknownPayloadType", "minimise"]

SECURE_FIELD_RULE = "secure_field"

# payload type -> ((field, scope, cleared value), ...)
CONTENT_FIELDS: Mapping[str, tuple[tuple[str, Scope, Any], ...]] = {
    "KeyInput": (
        ("key", Scope.KEYSTROKE_CONTENT, None),
        ("text", Scope.KEYSTROKE_CONTENT, None),
    ),
    "MouseMove": (),
    "MouseClick": (),
    "Scroll": (),
    "WindowFocus": (),
    "ScreenFrame": (
        ("ref", Scope.SCREEN_FRAMES, ""),
        ("phash", Scope.SCREEN_FRAMES, ""),
    ),
    "IdeEdit": (("diff", Scope.IDE_CONTENT, None),),
    "TerminalCommand": (("command", Scope.TERMINAL_CONTENT, ""),),
    "ActivityState": (),
}

_APP_FIELDS: tuple[tuple[str, Scope], ...] = (
    ("window_title", Scope.WINDOW_TITLES),
    ("url_host", Scope.WINDOW_TITLES),
)


def minimise(event: Mapping[str, Any], scopes: frozenset[Scope]) -> dict[str, Any]:
    """Return a copy of ``event`` with every content field whose scope is not in
    ``scopes`` cleared, and secure-field keystrokes always cleared.

    The input is not mutated; the returned envelope, ``app``, ``payload`` and
    ``redactions`` are new objects. Raises :class:`UnknownPayloadType` when
    ``payload.type`` is missing or unknown.
    """
    payload = dict(event["payload"])
    fields = CONTENT_FIELDS.get(str(payload.get("type")))
    if fields is None:
        raise UnknownPayloadType(f"unknown payload type {payload.get('type')!r}")
    out = dict(event)
    redactions = list(event.get("redactions") or [])
    for name, scope, cleared in fields:
        if scope not in scopes and name in payload:
            payload[name] = cleared
    if payload.get("is_secure_field") and (payload.get("key") or payload.get("text")):
        payload["key"] = None
        payload["text"] = None
        if SECURE_FIELD_RULE not in redactions:
            redactions.append(SECURE_FIELD_RULE)
    app = event.get("app")
    if isinstance(app, Mapping):
        app_copy = dict(app)
        for name, scope in _APP_FIELDS:
            if scope not in scopes and name in app_copy:
                app_copy[name] = None
        out["app"] = app_copy
    out["payload"] = payload
    out["redactions"] = redactions
    return out
