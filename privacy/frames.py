"""Frame redaction: OCR a screen frame and black out the words the text rules flag.

``redact_frame(png_or_webp_bytes)`` decodes the frame, runs Debian's
``tesseract-ocr`` through ``pytesseract`` for word boxes, rebuilds each OCR
line as text (words joined by one space, each word's character span known),
asks :func:`privacy.redaction.scan` - the same rules as keystrokes and window
titles - for hits, fills every word box a hit touches, and re-encodes the
frame in its own format. Each word is also scanned on its own, so a secret
that OCR glued to a neighbour or split from its key still fires when it fires
alone.

The result carries the redaction trail: how many boxes each rule filled. It
holds no text. Pure apart from the tesseract subprocess it starts per call
(CPU-bound, ~0.3-1.5 s for a desktop-sized frame): callers run it in a pool of
worker processes, never on an event loop.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, UnidentifiedImageError

from privacy.redaction import scan

__all__ = [
    "FORMATS",
    "CorruptFrame",
    "FrameTooLarge",
    "RedactedFrame",
    "WordBox",
    "decode_frame",
    "encode_frame",
    "ocr_words",
    "redact_frame",
    "redact_image",
    "redaction_boxes",
]

FORMATS: dict[str, str] = {"PNG": "image/png", "WEBP": "image/webp"}
MAX_PIXELS = 8_000 * 8_000
_PAD = 2  # pixels around a word box: antialiased glyph edges stay unreadable


class CorruptFrame(ValueError):
    """The bytes are not a PNG or WebP image Pillow can decode."""


class FrameTooLarge(ValueError):
    """The frame decodes to more than :data:`MAX_PIXELS` pixels."""


@dataclass(frozen=True, slots=True)
class WordBox:
    """One OCR word: its text, its line (block, paragraph, line numbers) and its box."""

    text: str
    line: tuple[int, int, int]
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class RedactedFrame:
    """A redacted, re-encoded frame. ``trail`` maps a rule name to the boxes it
    filled; ``words`` is how many words OCR read."""

    data: bytes
    media_type: str
    width: int
    height: int
    trail: dict[str, int] = field(default_factory=dict)
    words: int = 0

    @property
    def boxes(self) -> int:
        """How many word boxes were filled."""
        return sum(self.trail.values())


def decode_frame(data: bytes) -> Image.Image:
    """Return the decoded RGB image of ``data``.

    Raises :class:`CorruptFrame` for bytes that are not a complete PNG/WebP
    image and :class:`FrameTooLarge` above :data:`MAX_PIXELS` (checked before
    the pixels are decoded).
    """
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in FORMATS:
            raise CorruptFrame(f"not PNG or WebP: {image.format}")
        if image.width * image.height > MAX_PIXELS:
            raise FrameTooLarge(f"{image.width}x{image.height} pixels")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, CorruptFrame | FrameTooLarge):
            raise
        raise CorruptFrame(f"undecodable image: {err}") from None
    fmt = str(image.format)
    rgb = image.convert("RGB")
    rgb.format = fmt
    return rgb


def encode_frame(image: Image.Image, fmt: str = "PNG") -> bytes:
    """Encode ``image`` losslessly as PNG or WebP (``fmt``); raise ValueError otherwise."""
    if fmt not in FORMATS:
        raise ValueError(f"unsupported frame format {fmt!r}")
    out = io.BytesIO()
    if fmt == "WEBP":
        image.save(out, "WEBP", lossless=True, quality=80, method=2)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def ocr_words(image: Image.Image) -> list[WordBox]:
    """Return the words tesseract reads in ``image`` with their boxes, in reading
    order. Starts a ``tesseract`` process; raises ``pytesseract.TesseractNotFoundError``
    when the engine is not installed."""
    import pytesseract

    data = pytesseract.image_to_data(
        image, lang="eng", config="--psm 11", output_type=pytesseract.Output.DICT
    )
    words: list[WordBox] = []
    for i, text in enumerate(data["text"]):
        text = str(text).strip()
        if not text:
            continue
        words.append(
            WordBox(
                text,
                (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i])),
                int(data["left"][i]),
                int(data["top"][i]),
                int(data["width"][i]),
                int(data["height"][i]),
            )
        )
    return words


def _lines(words: Sequence[WordBox]) -> Iterable[list[WordBox]]:
    """Group words into visual lines: same tesseract line, or (for sparse-text
    mode, which numbers every fragment as its own block) vertically overlapping
    boxes, left to right."""
    rows: list[list[WordBox]] = []
    for word in sorted(words, key=lambda w: (w.top + w.height / 2, w.left)):
        centre = word.top + word.height / 2
        for row in rows:
            ref = row[0]
            if ref.top <= centre <= ref.top + ref.height:
                row.append(word)
                break
        else:
            rows.append([word])
    for row in rows:
        yield sorted(row, key=lambda w: w.left)


def _line_text(line: Sequence[WordBox], *, glue: bool) -> tuple[str, list[tuple[int, int]]]:
    """A line's text and each word's span in it. Words are joined by a space, or
    with ``glue`` by nothing when the gap between them is under 0.8 of a character
    (OCR splits ``DB_PASSWORD=Tr0ub4dor`` into two words at a narrow glyph)."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    cursor = 0
    previous: WordBox | None = None
    for word in line:
        if previous is not None:
            char = previous.width / max(len(previous.text), 1)
            gap = word.left - (previous.left + previous.width)
            sep = "" if glue and gap < 0.8 * char else " "
            parts.append(sep)
            cursor += len(sep)
        parts.append(word.text)
        spans.append((cursor, cursor + len(word.text)))
        cursor += len(word.text)
        previous = word
    return "".join(parts), spans


def redaction_boxes(words: Sequence[WordBox]) -> list[tuple[str, WordBox]]:
    """Return ``(rule, word)`` for every word a redaction rule claims. Pure.

    A line's words are joined with single spaces and scanned as one text (so
    ``password: hunter2`` across two words fires), then again with words that
    touch glued together (see `_line_text`); each word is scanned alone too.
    A word is claimed once, by the first rule that touches it.
    """
    claimed: dict[int, str] = {}
    index = {id(w): i for i, w in enumerate(words)}
    for line in _lines(words):
        for glue in (False, True):
            text, spans = _line_text(line, glue=glue)
            for hit in scan(text):
                for word, (start, end) in zip(line, spans, strict=True):
                    if start < hit.end and hit.start < end:
                        claimed.setdefault(index[id(word)], hit.rule)
        for word in line:
            hits = scan(word.text)
            if hits:
                claimed.setdefault(index[id(word)], hits[0].rule)
    return [(rule, words[i]) for i, rule in sorted(claimed.items())]


def redact_image(
    image: Image.Image, words: Sequence[WordBox]
) -> tuple[Image.Image, dict[str, int]]:
    """Return a copy of ``image`` with the claimed word boxes filled black and the
    box count per rule. Pure."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    trail: dict[str, int] = {}
    for rule, word in redaction_boxes(words):
        draw.rectangle(
            (
                word.left - _PAD,
                word.top - _PAD,
                word.left + word.width + _PAD,
                word.top + word.height + _PAD,
            ),
            fill=(0, 0, 0),
        )
        trail[rule] = trail.get(rule, 0) + 1
    return out, dict(sorted(trail.items()))


def redact_frame(data: bytes) -> RedactedFrame:
    """Decode, OCR, redact and re-encode one frame (same format as given).

    Raises :class:`CorruptFrame` / :class:`FrameTooLarge` for bad input. Blocks
    for the OCR run; safe to call from a worker process (module-level, picklable
    arguments and result).
    """
    image = decode_frame(data)
    fmt = str(image.format)
    words = ocr_words(image)
    redacted, trail = redact_image(image, words)
    return RedactedFrame(
        encode_frame(redacted, fmt), FORMATS[fmt], image.width, image.height, trail, len(words)
    )
