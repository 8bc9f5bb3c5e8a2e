"""A synthetic corpus of screen frames for measuring frame redaction, and the measure.

:func:`render_corpus` draws desktop-like frames with Pillow - code editors,
terminals, browser forms holding secrets and personal data, and pages of benign
text - and returns each with the secrets and benign words it shows.
:func:`measure` redacts every frame with :func:`privacy.frames.redact_frame`,
reads the result with OCR again and scores:

- **recall**: share of secrets no longer readable after redaction. A secret
  counts as readable when the OCR text of the redacted frame (spaces removed)
  shares a run of at least ``max(6, 60 %)`` of its characters with it, so a
  secret half-misread by OCR before redaction - and therefore missed by the
  rules - still counts as leaked when it can be read afterwards;
- **benign kept**: share of benign words that OCR read in the original frame and
  still reads after redaction (words OCR never read are not redaction's loss).

Also used by the simulator to draw frames of windows with text.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from privacy.frames import decode_frame, ocr_words, redact_frame

__all__ = ["CorpusFrame", "CorpusReport", "measure", "render_corpus", "render_window"]

_FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
)
SIZE = (1024, 640)


@dataclass(frozen=True, slots=True)
class CorpusFrame:
    """One rendered frame (PNG bytes), what it shows, and its kind."""

    name: str
    kind: str
    data: bytes
    secrets: tuple[str, ...]
    benign: tuple[str, ...]


@dataclass
class CorpusReport:
    """Scores of :func:`measure` (see the module docstring)."""

    frames: int = 0
    secrets: int = 0
    secrets_hidden: int = 0
    benign_read: int = 0
    benign_kept: int = 0
    cpu_seconds: float = 0.0
    leaked: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    trail: dict[str, int] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return self.secrets_hidden / self.secrets if self.secrets else 1.0

    @property
    def benign_kept_ratio(self) -> float:
        return self.benign_kept / self.benign_read if self.benign_read else 1.0

    @property
    def cpu_per_frame(self) -> float:
        return self.cpu_seconds / self.frames if self.frames else 0.0


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def render_window(
    image: Image.Image,
    box: tuple[int, int, int, int],
    title: str,
    lines: Sequence[str],
    *,
    dark: bool = False,
    size: int = 18,
) -> None:
    """Draw a window with a title bar and ``lines`` of text into ``image`` (in place)."""
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    bg, fg = ((30, 30, 30), (230, 230, 230)) if dark else ((255, 255, 255), (20, 20, 20))
    draw.rectangle(box, fill=bg, outline=(90, 90, 90), width=2)
    draw.rectangle((x0, y0, x1, y0 + 28), fill=(60, 80, 120))
    font = _font(size)
    draw.text((x0 + 10, y0 + 5), title, fill=(255, 255, 255), font=_font(15))
    y = y0 + 40
    for line in lines:
        if y + size > y1:
            break
        draw.text((x0 + 14, y), line, fill=fg, font=font)
        y += int(size * 1.6)


_SCENES: tuple[tuple[str, str, bool, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "editor-env",
        "code editor",
        False,
        (
            "# settings for the billing service",
            "DB_HOST=db.internal",
            "DB_PASSWORD=Tr0ub4dorX99",
            "AWS_ACCESS_KEY_ID=AKIAQ3EGRT7XVHPKM2ZW",
            "timeout = 30",
        ),
        ("Tr0ub4dorX99", "AKIAQ3EGRT7XVHPKM2ZW"),
    ),
    (
        "editor-python",
        "code editor",
        False,
        (
            "def connect(settings):",
            "    token = 'ghp_R7uV2kQ9wX4mZ8pL3nB6tY1cF5hJ0aD2sE7g'",
            "    return Client(settings.url, token)",
            "",
            "# reviewed by maria.lopez@example.org",
        ),
        ("ghp_R7uV2kQ9wX4mZ8pL3nB6tY1cF5hJ0aD2sE7g", "maria.lopez@example.org"),
    ),
    (
        "terminal-export",
        "terminal",
        True,
        (
            "$ ls -la deploy",
            "$ export STRIPE_KEY=sk_live_51HqT9cKx2Vb7Rn4Wm8Zp3Ld",
            "$ mysql -u admin --password=Qw3rtyZx81 orders",
            "$ git status",
        ),
        ("sk_live_51HqT9cKx2Vb7Rn4Wm8Zp3Ld", "Qw3rtyZx81"),
    ),
    (
        "terminal-curl",
        "terminal",
        True,
        (
            "$ curl https://api.example.com/v1/orders",
            "$ psql postgres://report:Hx7Kp2Lq9@db.example.com/sales",
            "$ make test",
        ),
        ("Hx7Kp2Lq9",),
    ),
    (
        "browser-payment",
        "browser form",
        False,
        (
            "Checkout - payment details",
            "Name on card: Daniel Weber",
            "Card number: 4111 1111 1111 1111",
            "Email: daniel.weber@example.net",
            "Phone: +44 20 7946 0958",
        ),
        ("4111111111111111", "daniel.weber@example.net", "+442079460958"),
    ),
    (
        "browser-bank",
        "browser form",
        False,
        (
            "Transfer money to a new payee",
            "IBAN: DE89 3704 0044 0532 0130 00",
            "Reference: invoice March",
            "Contact: accounts@example.com",
        ),
        ("DE89370400440532013000", "accounts@example.com"),
    ),
    (
        "docs-benign",
        "benign text",
        False,
        (
            "Quarterly planning notes",
            "Review the onboarding checklist with the team",
            "Schedule the design review for Thursday afternoon",
            "Update the roadmap document before Friday",
        ),
        (),
    ),
    (
        "chat-benign",
        "benign text",
        False,
        (
            "Team chat",
            "Lunch at the usual place around noon",
            "Please remember the retrospective tomorrow",
            "The release notes look good to me",
        ),
        (),
    ),
)


def _benign_words(lines: Sequence[str], secrets: Sequence[str]) -> tuple[str, ...]:
    words: list[str] = []
    for line in lines:
        for word in line.split():
            clean = word.strip(".,:;'\"()")
            if (
                len(clean) >= 4
                and clean.isalpha()
                and not any(clean in s or s in word for s in secrets)
            ):
                words.append(clean)
    return tuple(dict.fromkeys(words))


def render_corpus(copies: int = 1) -> list[CorpusFrame]:
    """Render the corpus: every scene ``copies`` times at a shifted position. Pure."""
    frames: list[CorpusFrame] = []
    for copy in range(copies):
        for name, kind, dark, lines, secrets in _SCENES:
            image = Image.new("RGB", SIZE, (40, 90, 140))
            offset = 20 + 37 * copy
            render_window(
                image,
                (offset, offset, SIZE[0] - 40, SIZE[1] - 60),
                f"{name} - {kind}",
                lines,
                dark=dark,
            )
            out = io.BytesIO()
            image.save(out, "PNG")
            frames.append(
                CorpusFrame(
                    f"{name}-{copy}", kind, out.getvalue(), secrets, _benign_words(lines, secrets)
                )
            )
    return frames


def _read(data: bytes) -> tuple[str, set[str]]:
    words = ocr_words(decode_frame(data))
    return "".join(w.text for w in words), {w.text.strip(".,:;'\"()") for w in words}


def _readable(secret: str, text: str) -> bool:
    needle = secret.replace(" ", "")
    match = SequenceMatcher(None, needle, text, autojunk=False).find_longest_match(
        0, len(needle), 0, len(text)
    )
    return match.size >= max(6, int(0.6 * len(needle)))


def measure(frames: Sequence[CorpusFrame]) -> CorpusReport:
    """Redact and re-read every frame; return the scores. Runs OCR three times a
    frame (before, redaction, after); ``cpu_seconds`` counts only the redaction,
    tesseract's child process included."""
    report = CorpusReport()
    for frame in frames:
        _, before = _read(frame.data)
        start = _cpu()
        redacted = redact_frame(frame.data)
        report.cpu_seconds += _cpu() - start
        text, after = _read(redacted.data)
        report.frames += 1
        for rule, count in redacted.trail.items():
            report.trail[rule] = report.trail.get(rule, 0) + count
        for secret in frame.secrets:
            report.secrets += 1
            if _readable(secret, text):
                report.leaked.append(f"{frame.name}: {secret}")
            else:
                report.secrets_hidden += 1
        for word in frame.benign:
            if word in before:
                report.benign_read += 1
                if word in after:
                    report.benign_kept += 1
                else:
                    report.lost.append(f"{frame.name}: {word}")
    return report


def _cpu() -> float:
    """CPU seconds of this process and its finished children (tesseract runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
