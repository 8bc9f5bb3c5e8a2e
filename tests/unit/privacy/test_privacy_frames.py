"""Frame redaction: which OCR words the rules claim, bad input, and the figures
on the synthetic corpus (tesseract runs; no network)."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from privacy.frame_corpus import measure, render_corpus
from privacy.frames import (
    CorruptFrame,
    FrameTooLarge,
    WordBox,
    decode_frame,
    redact_image,
    redaction_boxes,
)


def _words(*texts: str, top: int = 10) -> list[WordBox]:
    out, left = [], 10
    for text in texts:
        out.append(WordBox(text, (1, 1, 1), left, top, 10 * len(text), 14))
        left += 10 * len(text) + 12
    return out


def test_a_secret_split_by_ocr_is_claimed_in_both_words() -> None:
    words = [
        WordBox("DB_PASSWORD=T", (1, 1, 1), 35, 92, 136, 17),
        WordBox("rOub4dorx99", (1, 1, 1), 178, 91, 115, 14),
    ]
    assert [(rule, w.text) for rule, w in redaction_boxes(words)] == [
        ("password", "DB_PASSWORD=T"),
        ("password", "rOub4dorx99"),
    ]


def test_a_key_and_value_across_words_claims_the_value_only() -> None:
    claimed = redaction_boxes(_words("Email:", "jane.doe@example.com", "today"))
    assert [(rule, w.text) for rule, w in claimed] == [("email", "jane.doe@example.com")]


def test_benign_words_are_never_claimed() -> None:
    assert redaction_boxes(_words("Review", "the", "onboarding", "checklist")) == []


def test_claimed_boxes_are_filled_and_counted_per_rule() -> None:
    image = Image.new("RGB", (400, 60), (255, 255, 255))
    words = _words("card", "4111", "1111", "1111", "1111", top=20)
    out, trail = redact_image(image, words)
    assert trail == {"card_number": 4}
    assert out.getpixel((words[1].left + 3, 25)) == (0, 0, 0)
    assert out.getpixel((words[0].left + 3, 25)) == (255, 255, 255)
    assert image.getpixel((words[1].left + 3, 25)) == (255, 255, 255)  # input untouched


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + os.urandom(300)])
def test_corrupt_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(CorruptFrame):
        decode_frame(data)


def test_a_jpeg_is_refused_and_a_huge_frame_too() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")
    with pytest.raises(CorruptFrame):
        decode_frame(out.getvalue())
    big = io.BytesIO()
    Image.new("1", (9000, 8000)).save(big, "PNG")
    with pytest.raises(FrameTooLarge):
        decode_frame(big.getvalue())


def test_corpus_secrets_become_unreadable_and_benign_words_stay() -> None:
    report = measure(render_corpus(1))
    assert report.frames == 8 and report.secrets == 12
    assert report.recall >= 0.95, report.leaked
    assert report.benign_read >= 50
    assert report.benign_kept_ratio >= 0.95, report.lost
    assert {"password", "email", "card_number", "iban"} <= set(report.trail)
