"""Text is normalised before the redaction rules run (issue 18): invisible format
characters removed, NFKC applied; the stored text is the normalised, redacted one,
and `candor redact` gives exactly what the pipeline stores."""

from __future__ import annotations

import io
import json
import random
import sys
import unicodedata
from pathlib import Path

import pytest

from candor.privacy_cli import redact_stream
from privacy.redaction import INVISIBLE, normalise, redact, redact_event
from privacy.rules import rule_names
from tests.unit.privacy.privacy_events import make_event

CORPUS = Path(__file__).resolve().parents[2] / "data" / "redaction" / "corpus.jsonl"
# zero-width space/non-joiner/joiner, word joiner, BOM, bidi controls, soft hyphen,
# variation selector, tag character
TRICKS = (
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u202e",
    "\u2066",
    "\u200f",
    "\u00ad",
    "\ufe0f",
    "\U000e0041",
)


def _labelled() -> dict[str, list[tuple[str, list[str]]]]:
    by_rule: dict[str, list[tuple[str, list[str]]]] = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rules = {e["rule"] for e in record["expect"]}
        if len(rules) == 1 and record["text"].isascii():
            by_rule.setdefault(rules.pop(), []).append(
                (record["text"], [e["match"] for e in record["expect"]])
            )
    return by_rule


LABELLED = _labelled()


def test_every_rule_is_tried() -> None:
    assert set(LABELLED) == set(rule_names())


def _disguise(text: str, secret: str, rng: random.Random, count: int) -> str:
    """Insert ``count`` invisible characters at random positions inside ``secret``."""
    start = text.index(secret)
    inside = list(secret)
    for _ in range(count):
        inside.insert(rng.randrange(1, len(inside)), rng.choice(TRICKS))
    return text[:start] + "".join(inside) + text[start + len(secret) :]


@pytest.mark.parametrize("rule", sorted(LABELLED))
def test_each_rules_secret_with_invisible_characters_is_still_caught(rule: str) -> None:
    rng = random.Random(f"issue-18-{rule}")
    for text, secrets in LABELLED[rule][:5]:
        for count in (1, 3, 8):
            disguised = text
            for secret in secrets:
                disguised = _disguise(disguised, secret, rng, count)
            assert disguised != text
            out = redact(disguised)
            assert out.text == redact(text).text, (disguised, out.text)
            assert rule in out.rules
            for secret in secrets:
                assert secret not in out.text


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("export AWS_ACCESS_KEY_ID=\uff21\uff2b\uff29\uff21IOSFODNN7Q2XWZ3A", "aws_access_key"),
        ("mail \uff41\uff4e\uff4e\uff20example.com", "email"),
        ("card 4111\u00a01111\u00a01111\u00a01111", "card_number"),
        ("AKIA\u200dZX81QW27PLM4N5BC in a terminal command", "aws_access_key"),
    ],
)
def test_compatibility_forms_are_folded_before_the_rules(text: str, rule: str) -> None:
    assert rule in redact(text).rules


def test_every_format_character_is_invisible() -> None:
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) == "Cf":
            assert INVISIBLE.fullmatch(char), f"U+{code:04X}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ascii stays", "plain ascii stays"),
        ("caf\u00e9 na\u00efve", "caf\u00e9 na\u00efve"),
        ("zero\u200bwidth\u2060joined\ufeff", "zerowidthjoined"),
        ("\u202eevil\u202c bidi", "evil bidi"),
        ("\uff28\uff49 \ufb01le", "Hi file"),
        ("\u05e9\u05dc\u05d5\u05dd", "\u05e9\u05dc\u05d5\u05dd"),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected
    assert normalise(expected) == expected


def test_the_stored_text_is_normalised_even_when_no_rule_fires() -> None:
    event = make_event("TerminalCommand")
    event["payload"]["command"] = "echo\u200b hello"
    event["app"]["window_title"] = "\uff2e\uff4f\uff54\uff45\uff53"
    out = redact_event(event)
    assert out["payload"]["command"] == "echo hello"
    assert out["app"]["window_title"] == "Notes"
    assert out["redactions"] == []
    assert event["payload"]["command"] == "echo\u200b hello"  # not mutated
    plain = make_event("TerminalCommand")
    assert redact_event(plain) is plain


def test_redaction_stays_idempotent_on_disguised_text() -> None:
    text = "token=ghp_\u200bAbCdEfGhIjKlMnOpQrStUvWxYz0123456789 and \uff41@example.com"
    once = redact(text).text
    assert redact(once).text == once
    assert "ghp_" not in once and "@example.com" not in once


def test_candor_redact_agrees_with_the_pipeline() -> None:
    lines = [
        "export AWS_ACCESS_KEY_ID=AKIA\u200bIOSFODNN7Q2XWZ3A\n",
        "\u202eno secret here\n",
        "password=\ufeffHunter-22\n",
    ]
    out = io.StringIO()
    redact_stream(io.StringIO("".join(lines)), out)
    assert out.getvalue().splitlines() == [redact(line.rstrip("\n")).text for line in lines]
    assert "AKIA" not in out.getvalue() and "\u202e" not in out.getvalue()
