"""Screen frames of the desktop agent: when to grab, what to black out, how to encode.

`FrameCapturer` decides and builds; the grab itself and the excluded windows'
geometry come in as functions (`producers.agent.x11_frames` supplies them on
X11), so everything here runs in a unit test without a display.

- **When**: after each action (a click, a typing pause, a focus change) and,
  with no action, every ``idle_every_s``; never more often than every
  ``min_interval_s`` (a frame asked for sooner is skipped, not queued).
- **Privacy first**: the rectangles of excluded apps' windows (password
  managers and the like, `PrivacyPolicy.excluded_apps`) are filled black
  *before* the frame is hashed, encoded or written anywhere.
- **Skip repeats**: a frame whose perceptual hash (a 64-bit difference hash of
  the blacked-out image) equals the previous frame's is dropped.
- **Encode**: PNG (default) or lossless WebP with Pillow; the ref is
  ``sha256:<hex of the encoded bytes>``, the name the gateway stores it under.

The frame's `ScreenFrame` payload goes to Kafka like any event; the bytes go
to the outbox directory, from which `FrameUploader` puts them to the gateway.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw

_log = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # x, y, width, height in screen pixels
Grab = Callable[[], Image.Image]
ExcludedRects = Callable[[], Sequence[Rect]]


@dataclass(frozen=True, slots=True)
class FrameConfig:
    """Pacing and encoding of frames."""

    min_interval_s: float = 1.0
    idle_every_s: float = 30.0
    image_format: Literal["PNG", "WEBP"] = "PNG"


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One encoded frame and its contract payload (``ScreenFrame``)."""

    data: bytes
    digest: str
    payload: dict[str, Any]
    ts: int

    @property
    def suffix(self) -> str:
        return ".webp" if self.data[8:12] == b"WEBP" else ".png"


def difference_hash(image: Image.Image) -> str:
    """The 64-bit difference hash of ``image`` as 16 hex characters: 9x8
    grayscale thumbnail, one bit per horizontally adjacent pair (left brighter)."""
    small = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    pixels = small.tobytes()  # mode "L": one byte per pixel, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            bits = (bits << 1) | int(left > right)
    return f"{bits:016x}"


def black_out(image: Image.Image, rects: Sequence[Rect]) -> Image.Image:
    """Return a copy of ``image`` with every rectangle (clipped to it) filled black."""
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    draw = ImageDraw.Draw(out)
    for x, y, w, h in rects:
        if w > 0 and h > 0:
            draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(0, 0, 0))
    return out


def encode(image: Image.Image, image_format: str) -> bytes:
    """PNG or lossless WebP bytes of ``image``."""
    out = io.BytesIO()
    if image_format == "WEBP":
        image.save(out, "WEBP", lossless=True, method=2)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


class FrameCapturer:
    """Builds frames on demand; remembers the last hash and time. Not thread-safe."""

    def __init__(
        self, grab: Grab, excluded: ExcludedRects, config: FrameConfig | None = None
    ) -> None:
        self._grab = grab
        self._excluded = excluded
        self.config = config or FrameConfig()
        self._last_ts: int | None = None
        self._last_hash: str | None = None
        self._seq = 0
        self.skipped_same = 0

    def due(self, now: int, *, action: bool) -> bool:
        """Whether a frame may be taken at ``now`` (micros): after an action once
        ``min_interval_s`` passed, otherwise once ``idle_every_s`` passed."""
        if self._last_ts is None:
            return True
        gap = (now - self._last_ts) / 1e6
        return gap >= (self.config.min_interval_s if action else self.config.idle_every_s)

    def capture(self, now: int, *, action: bool = True) -> CapturedFrame | None:
        """Grab, black out, hash, encode; None when not due or unchanged.

        Blocks for the grab and the encoding (tens of milliseconds)."""
        if not self.due(now, action=action):
            return None
        self._last_ts = now
        image = black_out(self._grab(), self._excluded())
        phash = difference_hash(image)
        if phash == self._last_hash:
            self.skipped_same += 1
            return None
        self._last_hash = phash
        data = encode(image, self.config.image_format)
        digest = hashlib.sha256(data).hexdigest()
        self._seq += 1
        payload = {
            "type": "ScreenFrame",
            "frame_id": f"{now}-{self._seq}",
            "ref": f"sha256:{digest}",
            "width": image.width,
            "height": image.height,
            "phash": phash,
        }
        return CapturedFrame(data, digest, payload, now)


def write_outbox(outbox: Path, frame: CapturedFrame) -> Path:
    """Write ``frame`` to ``outbox/<hex><suffix>`` atomically (0600); return the path."""
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = outbox / f"{frame.digest}{frame.suffix}"
    fd, tmp = tempfile.mkstemp(prefix=".frame-", dir=outbox)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(frame.data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class FrameUploader:
    """Puts outbox frames to the gateway (``PUT /v1/frames/<hex>``) from a thread.

    A frame leaves the outbox once the gateway answered 2xx (stored or already
    there) or a 4xx other than 401/429 (refused for good: no consent, corrupt,
    too large - retrying cannot help). 401, 429, 5xx and network errors keep it
    for the next round, every ``interval_s``.
    """

    def __init__(self, outbox: Path, url: str, token: str, interval_s: float = 2.0) -> None:
        self.outbox = outbox
        self.url = url.rstrip("/")
        self._token = token
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded = 0
        self.refused = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="frame-upload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Upload what is left once more, then stop (waits up to 30 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self._interval_s)
            self.upload_all()
            if stopping:
                return

    def upload_all(self) -> int:
        """One round over the outbox; return how many frames left it."""
        done = 0
        for path in sorted(self.outbox.glob("*.*")):
            if path.name.startswith(".") or path.suffix not in (".png", ".webp"):
                continue
            status = self._put(path)
            if status is None or status in (401, 429) or status >= 500:
                continue
            if status >= 400:
                self.refused += 1
                _log.warning("gateway refused frame %s: %d", path.stem[:12], status)
            else:
                self.uploaded += 1
            path.unlink(missing_ok=True)
            done += 1
        return done

    def _put(self, path: Path) -> int | None:
        media = "image/webp" if path.suffix == ".webp" else "image/png"
        request = urllib.request.Request(
            f"{self.url}/v1/frames/{path.stem}",
            data=path.read_bytes(),
            method="PUT",
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": media},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError as err:
            _log.debug("frame upload failed: %s", err)
            return None
