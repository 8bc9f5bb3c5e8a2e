"""Sample capture events for the privacy tests, one per payload type."""

from __future__ import annotations

import copy
from typing import Any

SUBJECT = "s1_subject"
ORG = "org-1"
# Tuesday 2026-11-24 10:00:00 UTC
TUESDAY_10_UTC = 1_795_514_400_000_000

PAYLOADS: dict[str, dict[str, Any]] = {
    "KeyInput": {
        "type": "KeyInput",
        "key": "a",
        "text": "hello",
        "modifiers": ["shift"],
        "is_secure_field": False,
        "count": 5,
    },
    "MouseMove": {"type": "MouseMove", "path": [{"dt_ms": 0, "x": 1, "y": 2}]},
    "MouseClick": {"type": "MouseClick", "button": "left", "x": 10, "y": 20, "double": False},
    "Scroll": {"type": "Scroll", "dx": 0, "dy": -120},
    "WindowFocus": {"type": "WindowFocus", "previous_app_name": "Slack"},
    "ScreenFrame": {
        "type": "ScreenFrame",
        "frame_id": "f1",
        "ref": "sha256:" + "ab" * 32,
        "width": 1920,
        "height": 1080,
        "phash": "0123456789abcdef",
    },
    "IdeEdit": {
        "type": "IdeEdit",
        "path_hash": "h1",
        "language": "python",
        "chars_inserted": 12,
        "chars_deleted": 3,
        "diff": "+x = 1",
    },
    "TerminalCommand": {
        "type": "TerminalCommand",
        "command": "ls -la",
        "exit_code": 0,
        "cwd_hash": "c1",
    },
    "ActivityState": {"type": "ActivityState", "state": "active"},
}


def make_event(payload_type: str, **overrides: Any) -> dict[str, Any]:
    """Return a fresh, fully populated event of ``payload_type``."""
    event: dict[str, Any] = {
        "event_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "org_id": ORG,
        "subject_id": SUBJECT,
        "device_id": "dev-1",
        "seq": 1,
        "ts": TUESDAY_10_UTC,
        "received_ts": None,
        "app": {
            "app_name": "Code",
            "window_title": "consent.py - candor",
            "url_host": "github.com",
        },
        "payload": copy.deepcopy(PAYLOADS[payload_type]),
        "redactions": [],
        "consent_version": None,
    }
    event.update(overrides)
    return event
