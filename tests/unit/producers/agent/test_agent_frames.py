"""The agent's frames without a display: excluded windows black before anything
else, repeats skipped, pacing, content-addressed refs, and the agent loop's
ScreenFrame events after actions."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from producers.agent.agent import DesktopAgent
from producers.agent.frames import FrameCapturer, FrameConfig, difference_hash
from producers.agent.privacy import PauseSwitch, PrivacyPolicy
from producers.agent.recorder import Clicked, Recorder

SECOND = 1_000_000


class Screen:
    """A fake screen whose content the test changes."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (320, 200), (250, 250, 250))
        self.grabs = 0

    def draw(self, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
        ImageDraw.Draw(self.image).rectangle(box, fill=colour)

    def grab(self) -> Image.Image:
        self.grabs += 1
        return self.image.copy()


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_the_excluded_window_is_black_and_the_ref_is_the_bytes_hash() -> None:
    screen = Screen()
    screen.draw((100, 50, 199, 99), (255, 0, 0))  # the vault window
    frame = FrameCapturer(screen.grab, lambda: [(100, 50, 100, 50)]).capture(SECOND)
    assert frame is not None
    image = _decode(frame.data)
    assert image.crop((100, 50, 200, 100)).getextrema() == ((0, 0), (0, 0), (0, 0))
    assert image.getpixel((10, 10)) == (250, 250, 250)
    assert frame.payload["ref"] == "sha256:" + hashlib.sha256(frame.data).hexdigest()
    assert frame.payload["phash"] == difference_hash(image)
    assert (frame.payload["width"], frame.payload["height"]) == (320, 200)


def test_an_unchanged_screen_is_skipped_and_a_changed_one_kept() -> None:
    screen = Screen()
    capturer = FrameCapturer(screen.grab, lambda: [], FrameConfig(min_interval_s=0.5))
    assert capturer.capture(SECOND) is not None
    assert capturer.capture(3 * SECOND) is None and capturer.skipped_same == 1
    screen.draw((0, 0, 160, 200), (20, 20, 20))
    assert capturer.capture(5 * SECOND) is not None


def test_frames_are_paced() -> None:
    screen = Screen()
    capturer = FrameCapturer(
        screen.grab, lambda: [], FrameConfig(min_interval_s=1.0, idle_every_s=10.0)
    )
    assert capturer.capture(SECOND) is not None
    assert capturer.capture(SECOND + 500_000) is None  # action too soon: not even grabbed
    assert screen.grabs == 1
    assert not capturer.due(5 * SECOND, action=False) and capturer.due(5 * SECOND, action=True)
    assert capturer.due(11 * SECOND, action=False)


def test_webp_frames_are_lossless() -> None:
    screen = Screen()
    screen.draw((10, 10, 50, 50), (1, 2, 3))
    frame = FrameCapturer(screen.grab, lambda: [], FrameConfig(image_format="WEBP")).capture(1)
    assert frame is not None and frame.suffix == ".webp"
    assert _decode(frame.data).tobytes() == screen.image.tobytes()


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def capture(self, payload: Any, app: Any, ts: int | None = None) -> str:
        self.events.append((dict(payload), dict(app)))
        return "id"

    def poll(self, timeout: float = 0.0) -> int:
        return 0


class Focus:
    def current(self) -> tuple[str, str | None]:
        return "notes", "notes - editor"


def test_the_agent_sends_a_screen_frame_after_a_click_and_writes_the_bytes(tmp_path: Path) -> None:
    screen = Screen()
    clock = iter(range(SECOND, 1000 * SECOND, SECOND // 10))
    sink = Sink()
    agent = DesktopAgent(
        sink,
        Recorder(PrivacyPolicy(screen_frames=True)),
        Focus(),
        PauseSwitch(),
        clock=lambda: next(clock),
        frames=FrameCapturer(screen.grab, lambda: [], FrameConfig(min_interval_s=0.0)),
        frame_outbox=tmp_path / "frames",
    )
    agent.submit(Clicked(10, 10, "left"))
    screen.draw((0, 0, 100, 100), (0, 0, 255))
    agent.stop()
    agent.run()
    frames = [(p, a) for p, a in sink.events if p["type"] == "ScreenFrame"]
    assert frames and all(a["app_name"] == "notes" for _, a in frames)
    stored = {f"sha256:{p.stem}" for p in (tmp_path / "frames").glob("*.png")}
    assert stored == {p["ref"] for p, _ in frames}
