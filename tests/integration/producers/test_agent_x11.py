"""The desktop agent on a real X server (Xvfb) with real input (xdotool):
what reaches Kafka, and what the privacy rules keep off it.

Needs the Debian packages xvfb, xdotool and x11-utils (xmessage), and pynput
in the venv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from candor.settings import Settings
from tests.harness import REPO
from tests.integration.producers.broker import capture_events, read_topic
from tests.integration.producers.x11 import NEEDS_X11

pytestmark = NEEDS_X11


class Desktop:
    """xmessage windows and xdotool input on one display."""

    def __init__(self, display: str) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.windows: list[subprocess.Popen[bytes]] = []

    def open(self, instance: str, title: str) -> None:
        self.windows.append(
            subprocess.Popen(
                ["xmessage", "-name", instance, "-title", title, f"{instance} window"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self.xdotool("search", "--sync", "--name", f"^{title}$")

    def focus(self, title: str) -> None:
        wid = self.xdotool("search", "--name", f"^{title}$").split()[0]
        self.xdotool("windowfocus", "--sync", wid)

    def xdotool(self, *args: str) -> str:
        return subprocess.run(
            ["xdotool", *args], env=self.env, check=True, timeout=20, capture_output=True, text=True
        ).stdout

    def close(self) -> None:
        for window in self.windows:
            window.terminate()
            window.wait(timeout=10)


def test_agent_captures_typing_clicks_and_focus_and_keeps_secrets_local(
    display: str, settings: Settings, topic: str, tmp_path: Path
) -> None:
    desktop = Desktop(display)
    pause_file = tmp_path / "paused"
    try:
        desktop.open("notes", "notes - editor")
        desktop.open("keepassxc", "vault.kdbx - KeePassXC")
        desktop.focus("notes - editor")
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "candor.agent_cli",
                "--device",
                "desk-1",
                "--subject",
                "subject-1",
                "--org",
                "org-1",
                "--topic",
                topic,
                "--spool-dir",
                str(tmp_path / "spool"),
                "--pause-file",
                str(pause_file),
                "--display",
                display,
            ],
            cwd=REPO,
            env={**desktop.env, "CANDOR_KAFKA_BOOTSTRAP": settings.kafka.bootstrap},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert agent.stderr is not None
            for line in agent.stderr:
                if "capturing as device" in line:
                    break
            desktop.xdotool("type", "--delay", "30", "hello world")
            desktop.xdotool("key", "Return", "ctrl+s")
            desktop.xdotool("mousemove", "200", "150", "click", "1")
            time.sleep(1.5)
            desktop.focus("vault.kdbx - KeePassXC")
            time.sleep(0.5)
            desktop.xdotool("type", "--delay", "30", "hunter2")
            desktop.xdotool("key", "Return")
            time.sleep(0.5)
            pause_file.touch()
            time.sleep(0.8)
            desktop.focus("notes - editor")
            desktop.xdotool("type", "--delay", "30", "while paused")
            time.sleep(0.5)
            pause_file.unlink()
            time.sleep(0.8)
            desktop.xdotool("type", "--delay", "30", "back")
            desktop.xdotool("key", "Return")
            time.sleep(0.5)
        finally:
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
    finally:
        desktop.close()

    records = read_topic(settings.kafka.bootstrap, topic, want=1, settle_s=2)
    assert b"hunter2" not in b"".join(r.value for r in records)
    events = sorted((e for _, e in capture_events(records)), key=lambda e: e["seq"])
    assert {(e["device_id"], e["subject_id"], e["org_id"]) for e in events} == {
        ("desk-1", "subject-1", "org-1")
    }
    keys = [e for e in events if e["payload"]["type"] == "KeyInput"]
    in_notes = [e["payload"] for e in keys if e["app"]["app_name"] == "notes"]
    in_vault = [e["payload"] for e in keys if e["app"]["app_name"] == "keepassxc"]
    text = "".join(p["text"] or "" for p in in_notes)
    assert text == "hello worldback"
    assert "paused" not in text
    assert _keys(in_notes) == [("Enter", []), ("s", ["ctrl"]), ("Enter", [])]
    assert in_vault and all(
        p["text"] is None and p["key"] is None and p["is_secure_field"] for p in in_vault
    )
    assert sum(p["count"] for p in in_vault) == len("hunter2") + 1
    assert {e["app"]["window_title"] for e in events if e["app"]["app_name"] == "keepassxc"} == {
        None
    }
    assert "notes - editor" in {e["app"]["window_title"] for e in events}
    clicks = [e["payload"] for e in events if e["payload"]["type"] == "MouseClick"]
    assert clicks == [{"type": "MouseClick", "button": "left", "x": 200, "y": 150, "double": False}]
    assert any(
        p["type"] == "MouseMove" and p["path"][-1] == {**p["path"][-1], "x": 200, "y": 150}
        for p in (e["payload"] for e in events)
    )
    focus = [
        (e["app"]["app_name"], e["payload"]["previous_app_name"])
        for e in events
        if e["payload"]["type"] == "WindowFocus"
    ]
    assert focus[0] == ("notes", None) and ("keepassxc", "notes") in focus


def _keys(payloads: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(p["key"], p["modifiers"]) for p in payloads if p["key"] is not None]
