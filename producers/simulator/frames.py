"""Pixels for the simulator's screen frames: a window with text, drawn with Pillow.

The simulator (`producers.simulator.simulator`) emits ``ScreenFrame`` events with a
made-up ref. `render_frame` draws a simple frame for such an event - a window
of the event's app with its title and a few lines of the kind of text that
app shows (code, shell commands, a form), now and then with a fake secret so
the gateway's OCR redaction has something to black out - and returns the PNG
bytes and the event with ``ref``, ``phash``, ``width`` and ``height`` of those
bytes. `FrameUploader` (from the agent) then puts them to the gateway, so a
demo exercises capture, redaction, the frame store and the export end to end.

Deterministic: the same event (``frame_id``) gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
from typing import Any

from PIL import Image

from privacy.frame_corpus import render_window
from producers.agent.frames import difference_hash

__all__ = ["SIZE", "render_frame"]

SIZE = (960, 540)

_TEXT: dict[str, tuple[str, ...]] = {
    "code": (
        "def handle(request):",
        "    user = load_user(request)",
        "    return render(user)",
        "# TODO: cache the profile",
        "class Invoice(Model):",
    ),
    "terminal": (
        "$ git status",
        "$ make test",
        "$ ls -la build",
        "$ tail -f app.log",
        "$ docker compose ps",
    ),
    "browser": (
        "Account settings",
        "Display name: Sam",
        "Language: English",
        "Notifications: weekly digest",
        "Save changes",
    ),
}
_SECRETS = (
    "DB_PASSWORD=Hq7Lm2Pz9K",
    "contact: sam.lee@example.org",
    "Card number: 4111 1111 1111 1111",
)


def _lines(app: str, rng: random.Random) -> list[str]:
    kind = (
        "terminal"
        if any(t in app for t in ("term", "shell", "bash", "zsh"))
        else "browser"
        if any(b in app for b in ("firefox", "chrom", "browser", "safari"))
        else "code"
    )
    lines = rng.sample(_TEXT[kind], 4)
    if rng.random() < 0.3:
        lines.insert(rng.randrange(len(lines)), rng.choice(_SECRETS))
    return lines


def render_frame(event: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """PNG bytes for the ``ScreenFrame`` ``event`` and a copy of the event whose
    payload describes them (``ref`` = ``sha256:`` of the bytes). Pure."""
    payload = event["payload"]
    app = event.get("app") or {}
    app_name = str(app.get("app_name") or "desktop")
    rng = random.Random(str(payload.get("frame_id")))
    image = Image.new("RGB", SIZE, (40, 90, 140))
    inset = rng.randrange(10, 60)
    render_window(
        image,
        (inset, inset, SIZE[0] - inset, SIZE[1] - inset),
        str(app.get("window_title") or app_name),
        _lines(app_name.lower(), rng),
        dark="term" in app_name.lower(),
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    data = out.getvalue()
    new_payload = {
        **payload,
        "ref": "sha256:" + hashlib.sha256(data).hexdigest(),
        "width": SIZE[0],
        "height": SIZE[1],
        "phash": difference_hash(image),
    }
    return data, {**event, "payload": new_payload}
