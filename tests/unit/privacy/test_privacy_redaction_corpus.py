from __future__ import annotations

import json
from pathlib import Path

import pytest

from privacy.redaction import redact
from privacy.redaction_eval import evaluate_corpus, evaluate_lines
from privacy.rules import GATE_CHARS, GATE_LITERALS

CORPUS = Path(__file__).resolve().parents[2] / "data" / "redaction" / "corpus.jsonl"


def test_corpus_recall_and_precision(capsys: pytest.CaptureFixture[str]) -> None:
    report = evaluate_corpus(CORPUS)
    with capsys.disabled():
        print("\n" + report.summary())
    assert report.lines >= 400
    assert report.recall >= 0.99, report.summary()
    assert report.precision >= 0.98, report.summary()


def test_corpus_is_idempotent_under_redaction() -> None:
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        once = redact(text).text
        assert redact(once).text == once, text


def test_every_labelled_secret_passes_the_gate() -> None:
    """The fast path skips text without the gate's characters and literals; no
    labelled hit may hide there."""
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        for expected in json.loads(line)["expect"]:
            match = expected["match"]
            gated = not GATE_CHARS.isdisjoint(match) or any(g in match for g in GATE_LITERALS)
            assert gated, expected


@pytest.mark.parametrize(
    ("lines", "recall", "precision"),
    [
        (['{"text": "mail a@example.com", "expect": [{"rule": "email", '
          '"match": "a@example.com"}]}'], 1.0, 1.0),
        (['{"text": "mail a@example.com", "expect": []}'], 1.0, 0.0),
        (['{"text": "nothing here", "expect": [{"rule": "email", "match": "x"}]}'], 0.0, 1.0),
        (['{"text": "mail a@example.com", "expect": [{"rule": "phone", '
          '"match": "a@example.com"}]}'], 0.0, 0.0),
    ],
)
def test_evaluator_counts_hits_and_misses(
    lines: list[str], recall: float, precision: float,
) -> None:
    report = evaluate_lines(lines)
    assert (report.recall, report.precision) == (recall, precision)
