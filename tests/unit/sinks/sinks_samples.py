"""Contract-valid records for the sink tests (unit and integration)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

TS = 1_760_000_000_000_000

PAYLOADS: dict[str, dict[str, Any]] = {
    "KeyInput": {
        "type": "KeyInput",
        "key": "a",
        "text": "héllo",
        "modifiers": ["ctrl"],
        "is_secure_field": False,
        "count": 5,
    },
    "MouseMove": {
        "type": "MouseMove",
        "path": [
            {"dt_ms": 0, "x": 0, "y": 0},
            {"dt_ms": 8, "x": 3, "y": 4},
            {"dt_ms": 8, "x": 3, "y": 10},
        ],
    },
    "MouseClick": {"type": "MouseClick", "button": "left", "x": 100, "y": 200, "double": True},
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
        "chars_deleted": 2,
        "diff": "+print('x')\n",
    },
    "TerminalCommand": {
        "type": "TerminalCommand",
        "command": "git status",
        "exit_code": 1,
        "cwd_hash": "c" * 16,
    },
    "ActivityState": {"type": "ActivityState", "state": "idle"},
}


def event(
    kind: str = "KeyInput",
    *,
    ts: int = TS,
    seq: int = 0,
    subject: str = "s1",
    device: str = "d1",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A capture event with the payload of ``kind``."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "org_id": "org1",
        "subject_id": subject,
        "device_id": device,
        "seq": seq,
        "ts": ts,
        "received_ts": ts + 1_000,
        "app": {"app_name": "code", "window_title": "main.py", "url_host": None},
        "payload": copy.deepcopy(PAYLOADS[kind]),
        "redactions": ["email"],
        "consent_version": 3,
        "client_version": "1.2.0",
    }


SESSION: dict[str, Any] = {
    "session_id": f"s1:d1:{TS}",
    "org_id": "org1",
    "subject_id": "s1",
    "device_id": "d1",
    "start_ts": TS,
    "end_ts": TS + 60_000_000,
    "end_reason": "gap",
    "active_seconds": 42.5,
    "event_counts": {"KeyInput": 10, "MouseClick": 2},
    "app_seconds": {"code": 40.0, "x": 2.5},
    "keystrokes": 30,
    "clicks": 2,
    "scrolls": 1,
    "mouse_distance_px": 123.5,
    "commands_run": 1,
    "event_ids_count": 13,
}

MINUTE: dict[str, Any] = {
    "org_id": "org1",
    "subject_id": "s1",
    "device_id": "d1",
    "window_start": TS - TS % 60_000_000,
    "keys": 30,
    "clicks": 2,
    "scrolls": 1,
    "mouse_distance_px": 10.0,
    "active_seconds": 50.0,
    "app_seconds": {"code": 50.0},
    "events": 33,
}


def action(
    kind: str = "typing",
    *,
    subject: str = "s1",
    start: int = TS,
    session: str | None = "s1:d1:0",
    n: int = 0,
) -> dict[str, Any]:
    """An Action of ``kind``; ``n`` makes the action_id unique."""
    return {
        "action_id": f"{subject}-{start}-{n}",
        "org_id": "org1",
        "subject_id": subject,
        "device_id": "d1",
        "session_hint": session,
        "kind": kind,
        "start_ts": start,
        "end_ts": start + 1_000_000,
        "text": "hello" if kind == "typing" else None,
        "chord": "ctrl+s" if kind == "shortcut" else None,
        "button": "left" if kind in ("click", "drag") else None,
        "x": 5 if kind in ("click", "drag") else None,
        "y": 6 if kind in ("click", "drag") else None,
        "path": [{"dt_ms": 0, "x": 1, "y": 2}] if kind == "drag" else [],
        "dx": 0,
        "dy": 3 if kind == "scroll" else 0,
        "command": "ls" if kind == "command" else None,
        "app_name": "code",
        "window_title": "main.py",
        "observation_ref": "sha256:" + "cd" * 32,
        "event_count": 4,
        "redactions": [],
    }


def consent(
    subject: str = "s1", version: int = 1, scopes: list[str] | None = None, changed_at: int = TS
) -> dict[str, Any]:
    """A ConsentPolicy."""
    return {
        "subject_id": subject,
        "org_id": "org1",
        "version": version,
        "scopes": ["activity_metadata", "training_use"] if scopes is None else scopes,
        "changed_by": "admin",
        "changed_at": changed_at,
        "reason": None,
    }
