"""Measure the redaction rules against a labelled corpus.

The corpus is JSON lines: ``{"text": str, "expect": [{"rule": str, "match": str}]}``.
Text and matches are normalised first (:func:`privacy.redaction.normalise`), as
:func:`privacy.redaction.redact` does, so a line may hide a secret behind
zero-width characters and label it in its visible form. An expected hit is found
when a hit of the same rule covers the whole expected ``match`` (a partial cover
would leave part of the secret in clear). Every other hit is a false positive.
Recall = found / expected, precision = true hits / hits, benign kept = share of
lines labelled without any hit in which nothing fired (the text a user keeps).

``python -m privacy.redaction_eval [corpus.jsonl]`` prints the figures of the
repository's corpus (``tests/data/redaction/corpus.jsonl`` by default).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from privacy.redaction import Hit, normalise, scan

__all__ = ["Miss", "Report", "RuleScore", "evaluate_corpus", "evaluate_lines"]


@dataclass(frozen=True, slots=True)
class RuleScore:
    """Counts for one rule."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def recall(self) -> float:
        """Found share of expected hits (1.0 when none were expected)."""
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def precision(self) -> float:
        """True share of reported hits (1.0 when none were reported)."""
        reported = self.true_positives + self.false_positives
        return self.true_positives / reported if reported else 1.0


@dataclass(frozen=True, slots=True)
class Miss:
    """One disagreement with the corpus: ``kind`` is "missed" (expected, not found)
    or "spurious" (found, not expected)."""

    line: int
    kind: str
    rule: str
    match: str


@dataclass(frozen=True, slots=True)
class Report:
    """Totals over a corpus, per rule, and the disagreements."""

    lines: int
    recall: float
    precision: float
    per_rule: dict[str, RuleScore]
    misses: tuple[Miss, ...] = field(default=())
    benign_lines: int = 0
    benign_untouched: int = 0

    @property
    def benign_kept(self) -> float:
        """Share of benign lines (no expected hit) left unchanged (1.0 when none)."""
        return self.benign_untouched / self.benign_lines if self.benign_lines else 1.0

    def summary(self) -> str:
        """Return a human-readable table of the figures."""
        rows = [
            f"corpus lines={self.lines} recall={self.recall:.4f} "
            f"precision={self.precision:.4f} benign_kept={self.benign_kept:.4f} "
            f"({self.benign_untouched}/{self.benign_lines})"
        ]
        for name, score in sorted(self.per_rule.items()):
            rows.append(
                f"  {name:<18} tp={score.true_positives:<4} fp={score.false_positives:<3} "
                f"fn={score.false_negatives:<3} recall={score.recall:.3f} "
                f"precision={score.precision:.3f}"
            )
        rows.extend(f"  line {m.line}: {m.kind} {m.rule}: {m.match!r}" for m in self.misses)
        return "\n".join(rows)


def _score_line(
    number: int,
    text: str,
    expected: list[tuple[str, str]],
    hits: tuple[Hit, ...],
) -> tuple[Counter[tuple[str, str]], list[Miss]]:
    counts: Counter[tuple[str, str]] = Counter()
    misses: list[Miss] = []
    used: set[int] = set()
    for rule, match in expected:
        found = None
        for index, hit in enumerate(hits):
            if index in used or hit.rule != rule:
                continue
            if match in text[hit.start : hit.end]:
                found = index
                break
        if found is None:
            counts[(rule, "fn")] += 1
            misses.append(Miss(number, "missed", rule, match))
        else:
            used.add(found)
            counts[(rule, "tp")] += 1
    for index, hit in enumerate(hits):
        if index not in used:
            counts[(hit.rule, "fp")] += 1
            misses.append(Miss(number, "spurious", hit.rule, text[hit.start : hit.end]))
    return counts, misses


def evaluate_lines(lines: list[str]) -> Report:
    """Score the rules on corpus ``lines`` (JSON objects, blank lines skipped).

    Raises ``ValueError`` on a line that is not a corpus record.
    """
    counts: Counter[tuple[str, str]] = Counter()
    misses: list[Miss] = []
    total = benign = untouched = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f"corpus line {number} is not a record")
        text = normalise(record["text"])
        expected = [(str(e["rule"]), normalise(str(e["match"]))) for e in record.get("expect", [])]
        hits = scan(text)
        line_counts, line_misses = _score_line(number, text, expected, hits)
        if not expected:
            benign += 1
            untouched += not hits
        counts.update(line_counts)
        misses.extend(line_misses)
        total += 1
    names = sorted({rule for rule, _ in counts})
    per_rule = {
        name: RuleScore(counts[(name, "tp")], counts[(name, "fp")], counts[(name, "fn")])
        for name in names
    }
    overall = RuleScore(
        sum(s.true_positives for s in per_rule.values()),
        sum(s.false_positives for s in per_rule.values()),
        sum(s.false_negatives for s in per_rule.values()),
    )
    return Report(
        total, overall.recall, overall.precision, per_rule, tuple(misses), benign, untouched
    )


def evaluate_corpus(path: str | Path) -> Report:
    """Score the rules on the corpus file at ``path`` (UTF-8 JSON lines)."""
    return evaluate_lines(Path(path).read_text(encoding="utf-8").splitlines())


DEFAULT_CORPUS = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction" / "corpus.jsonl"
)


def main(argv: list[str] | None = None) -> int:
    """Print the figures of the corpus named in ``argv`` (default: the repository's).
    Returns 0; raises ``OSError``/``ValueError`` for an unreadable corpus."""
    args = sys.argv[1:] if argv is None else argv
    print(evaluate_corpus(args[0] if args else DEFAULT_CORPUS).summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
