"""Screen frames of the desktop agent on a real X server (Xvfb) with real windows:
a frame is captured after actions, its ScreenFrame event reaches Kafka with the
ref of the bytes in the outbox, and the excluded app's window is black in it.

Needs the Debian packages xvfb, xdotool and x11-utils (xmessage).
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from candor.settings import Settings
from tests.harness import REPO
from tests.integration.producers.broker import capture_events, read_topic
from tests.integration.producers.x11 import NEEDS_X11

pytestmark = NEEDS_X11


def _open(
    env: dict[str, str], instance: str, title: str, geometry: str, text: str
) -> subprocess.Popen[bytes]:
    window = subprocess.Popen(
        [
            "xmessage",
            "-name",
            instance,
            "-title",
            title,
            "-geometry",
            geometry,
            "-bg",
            "white",
            "-fg",
            "black",
            text,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(
        ["xdotool", "search", "--sync", "--name", f"^{title}$"],
        env=env,
        check=True,
        timeout=20,
        capture_output=True,
    )
    return window


def _geometry(env: dict[str, str], title: str) -> tuple[int, int, int, int]:
    wid = subprocess.run(
        ["xdotool", "search", "--name", f"^{title}$"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout.split()[0]
    out = subprocess.run(
        ["xdotool", "getwindowgeometry", "--shell", wid],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    values = dict(line.split("=", 1) for line in out.split())
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def test_agent_captures_frames_with_the_excluded_window_black(
    display: str, settings: Settings, topic: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DISPLAY": display}
    windows = [
        _open(env, "notes", "notes - editor", "500x300+40+40", "quarterly notes " * 6),
        _open(
            env,
            "keepassxc",
            "vault.kdbx - KeePassXC",
            "400x250+700+400",
            "vault entry: bank hunter2 " * 4,
        ),
    ]
    spool = tmp_path / "spool"
    try:
        vault = _geometry(env, "vault.kdbx - KeePassXC")
        notes = _geometry(env, "notes - editor")
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "candor.agent_cli",
                "--device",
                "desk-f",
                "--subject",
                "subject-f",
                "--org",
                "org-1",
                "--topic",
                topic,
                "--spool-dir",
                str(spool),
                "--display",
                display,
                "--screen-frames",
                "--frame-interval",
                "0.3",
            ],
            cwd=REPO,
            env={**env, "CANDOR_KAFKA_BOOTSTRAP": settings.kafka.bootstrap},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert agent.stderr is not None
            for line in agent.stderr:
                if "capturing as device" in line:
                    break
            subprocess.run(
                ["xdotool", "mousemove", "120", "120", "click", "1"],
                env=env,
                check=True,
                timeout=20,
            )
            time.sleep(1.0)
            subprocess.run(
                ["xdotool", "mousemove", "800", "450", "click", "1"],
                env=env,
                check=True,
                timeout=20,
            )
            time.sleep(1.0)
        finally:
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
    finally:
        for window in windows:
            window.terminate()
            window.wait(timeout=10)

    files = sorted((spool / "frames").glob("*.png"))
    assert files, "no frame was captured"
    for path in files:
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == path.stem
        image = Image.open(io.BytesIO(data)).convert("RGB")
        assert image.size == (1280, 800)
        x, y, w, h = vault
        region = image.crop((x, y, x + w, y + h))
        assert region.getextrema() == ((0, 0), (0, 0), (0, 0)), "excluded window visible"
        nx, ny, nw, nh = notes
        shown = image.crop((nx, ny, nx + nw, ny + nh))
        assert shown.convert("L").getextrema() == (0, 255), "the notes window is not shown"

    records = read_topic(settings.kafka.bootstrap, topic, want=1, settle_s=2)
    frames = [event["payload"] for _, event in capture_events(records)]
    frames = [p for p in frames if p["type"] == "ScreenFrame"]
    assert {p["ref"] for p in frames} == {f"sha256:{f.stem}" for f in files}
    assert all(p["width"] == 1280 and p["height"] == 800 and len(p["phash"]) == 16 for p in frames)
