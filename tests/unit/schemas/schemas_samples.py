"""Valid in-memory samples of every Candor record, shared by the schema tests."""

from __future__ import annotations

import copy
from typing import Any

TS = 1_700_000_000_000_000

PAYLOADS: dict[str, dict[str, Any]] = {
    "KeyInput": {
        "type": "KeyInput",
        "key": "Enter",
        "text": "héllo wörld ✓",
        "modifiers": ["ctrl", "shift"],
        "is_secure_field": False,
        "count": 3,
    },
    "MouseMove": {
        "type": "MouseMove",
        "path": [{"dt_ms": 0, "x": 10, "y": 20}, {"dt_ms": 16, "x": -5, "y": 2**20}],
    },
    "MouseClick": {"type": "MouseClick", "button": "right", "x": 1, "y": 2, "double": True},
    "Scroll": {"type": "Scroll", "dx": -3, "dy": 120},
    "WindowFocus": {"type": "WindowFocus", "previous_app_name": "firefox"},
    "ScreenFrame": {
        "type": "ScreenFrame",
        "frame_id": "f-1",
        "ref": "sha256:" + "ab" * 32,
        "width": 1920,
        "height": 1080,
        "phash": "0123456789abcdef",
    },
    "IdeEdit": {
        "type": "IdeEdit",
        "path_hash": "p" * 16,
        "language": "python",
        "chars_inserted": 12,
        "chars_deleted": 0,
        "diff": "+print('x')\n",
    },
    "TerminalCommand": {
        "type": "TerminalCommand",
        "command": "git status",
        "exit_code": None,
        "cwd_hash": "c" * 16,
    },
    "ActivityState": {"type": "ActivityState", "state": "locked"},
}


def event(payload_type: str = "KeyInput", **overrides: Any) -> dict[str, Any]:
    """Return a complete CaptureEvent (current version) carrying ``payload_type``."""
    datum: dict[str, Any] = {
        "event_id": "6f1c2a9e-8d4b-4c1e-9a7f-0b3d5e7f9a1c",
        "org_id": "org-1",
        "subject_id": "subj-123",
        "device_id": "dev-9",
        "seq": 42,
        "ts": TS,
        "received_ts": TS + 1500,
        "app": {"app_name": "code", "window_title": "main.py — candor", "url_host": None},
        "payload": copy.deepcopy(PAYLOADS[payload_type]),
        "redactions": ["email"],
        "consent_version": 7,
        "client_version": "1.4.0",
    }
    datum.update(overrides)
    return datum


def consent(**overrides: Any) -> dict[str, Any]:
    """Return a complete ConsentPolicy."""
    datum: dict[str, Any] = {
        "subject_id": "subj-123",
        "org_id": "org-1",
        "version": 3,
        "scopes": ["activity_metadata", "analytics"],
        "changed_by": "subj-123",
        "changed_at": TS,
        "reason": None,
    }
    datum.update(overrides)
    return datum


SESSION: dict[str, Any] = {
    "session_id": f"subj-123:dev-9:{TS}",
    "org_id": "org-1",
    "subject_id": "subj-123",
    "device_id": "dev-9",
    "start_ts": TS,
    "end_ts": TS + 60_000_000,
    "end_reason": "idle",
    "active_seconds": 42.5,
    "event_counts": {"KeyInput": 10, "MouseClick": 2},
    "app_seconds": {"code": 40.0, "firefox": 2.5},
    "keystrokes": 10,
    "clicks": 2,
    "scrolls": 0,
    "mouse_distance_px": 1234.5,
    "commands_run": 1,
    "event_ids_count": 12,
}

MINUTE: dict[str, Any] = {
    "org_id": "org-1",
    "subject_id": "subj-123",
    "device_id": "dev-laptop-1",
    "window_start": TS - TS % 60_000_000,
    "keys": 5,
    "clicks": 1,
    "scrolls": 2,
    "mouse_distance_px": 10.0,
    "active_seconds": 30.0,
    "app_seconds": {"code": 30.0},
    "events": 8,
}

ACTION: dict[str, Any] = {
    "action_id": "a-6f1c2a9e",
    "org_id": "org-1",
    "subject_id": "subj-123",
    "device_id": "dev-9",
    "session_hint": None,
    "kind": "drag",
    "start_ts": TS,
    "end_ts": TS + 900_000,
    "text": None,
    "chord": None,
    "button": "left",
    "x": 10,
    "y": 20,
    "path": [{"dt_ms": 0, "x": 10, "y": 20}, {"dt_ms": 30, "x": 50, "y": 60}],
    "dx": 0,
    "dy": 0,
    "command": None,
    "app_name": "code",
    "window_title": None,
    "observation_ref": "sha256:" + "cd" * 32,
    "event_count": 4,
    "redactions": [],
}

LATE: dict[str, Any] = {
    "event_id": "0b6c4f1e-8f7e-4e55-9a51-1c2d3e4f5a6b",
    "org_id": "org-1",
    "subject_id": "subj-123",
    "device_id": "dev-9",
    "ts": TS,
    "stage": "session",
    "detected_at": TS + 60_000_000,
}
