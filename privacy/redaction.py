"""Redaction: replace secrets and personal data in captured text by typed placeholders.

``redact("export DB_PASSWORD=hunter2")`` gives
``Redacted(text="export DB_PASSWORD=<SECRET:password>", rules=("password",))``.
The rule table lives in :mod:`privacy.rules`.

Guarantees:

- Idempotent: a placeholder is never redacted again and passes repeat until
  nothing fires, so ``redact(redact(x).text).text == redact(x).text``.
- Each pass looks at one input with every rule, resolves overlapping hits by rule
  priority, then makes all replacements at once; :func:`scan` is that first pass.
- Cheap on clean text: text with none of :data:`privacy.rules.GATE_CHARS` and
  :data:`privacy.rules.GATE_LITERALS` (plain words) or shorter than the shortest
  possible hit is returned after one set test and a few substring tests;
  past that gate each rule runs only when its prefilter (a few substring tests, or
  one digit-run search shared by the number rules) says it may match.

- Normalised first: :func:`normalise` removes invisible format characters
  (zero-width space/joiners, word joiner, BOM, bidi controls, variation
  selectors, every other Unicode ``Cf`` character) and applies NFKC, so
  ``AKIA\u200b...`` or full-width ``\uff21\uff2b\uff29\uff21...`` is seen as ``AKIA...``. The
  text returned (and stored) is the normalised, redacted text; ``candor redact``
  calls :func:`redact` too, so the audit command and the pipeline agree.

Redaction works on whatever text it is given. Keystrokes arrive in chunks, so a
secret split across two ``KeyInput`` chunks is only caught once the chunks are
merged: the stream keeps no per-event typed text and redacts the merged burst in
the action reducer (see privacy/README.md, "Typed text").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacy.rules import GATE_CHARS, GATE_LITERALS, RULES, Kind, Rule

__all__ = [
    "INVISIBLE",
    "REDACTED_FIELDS",
    "Hit",
    "Redacted",
    "normalise",
    "redact",
    "redact_event",
    "scan",
]

_MIN_LENGTH = 6  # "a@b.co"; nothing shorter can hold a hit
_PLACEHOLDER = re.compile(r"<(?:SECRET|PII):[a-z0-9_]+>")
_DIGIT_RUN = re.compile(r"\d(?:[ ().\-/]{0,2}\d){6}")

INVISIBLE: re.Pattern[str] = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
    "\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
"""Characters that render as nothing: every Unicode format character (category
``Cf``: zero-width space and joiners, word joiner, BOM, bidi controls, tags) and
the other default-ignorable code points (variation selectors, Hangul fillers,
the combining grapheme joiner)."""


def normalise(text: str) -> str:
    """Return ``text`` without :data:`INVISIBLE` characters, in NFKC form.

    What redaction scans and what is stored: an invisible character or a
    compatibility form (full-width letters, ligatures, non-breaking spaces)
    cannot split or disguise a secret. ASCII text is returned as it is (it
    holds neither). Pure; never raises.
    """
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", INVISIBLE.sub("", text))
    return INVISIBLE.sub("", text)


# (container, field): "app" is the envelope's app, otherwise a payload type.
REDACTED_FIELDS: tuple[tuple[str, str], ...] = (
    ("KeyInput", "text"),
    ("app", "window_title"),
    ("TerminalCommand", "command"),
    ("IdeEdit", "diff"),
)


@dataclass(frozen=True, slots=True)
class Redacted:
    """Redacted text and the names of the rules that fired (in text order, once each)."""

    text: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One span of the input a rule claims. Holds no secret: read it off the input
    with ``text[hit.start:hit.end]`` when (and only when) you must."""

    rule: str
    kind: Kind
    start: int
    end: int


def _index(rules: tuple[Rule, ...], attribute: str) -> tuple[tuple[str, frozenset[int]], ...]:
    """Map each trigger literal to the positions of the rules it admits."""
    index: dict[str, set[int]] = {}
    for position, rule in enumerate(rules):
        for literal in getattr(rule, attribute):
            index.setdefault(literal, set()).add(position)
    return tuple((literal, frozenset(positions)) for literal, positions in index.items())


_LITERALS = _index(RULES, "literals")
_FOLDED = _index(RULES, "folded")
_UNGATED = frozenset(i for i, rule in enumerate(RULES) if not rule.literals and not rule.folded)


def _candidates(text: str) -> list[Rule]:
    """Return the rules whose prefilter admits ``text``, in priority order. Each
    trigger literal is tested once, whatever the number of rules sharing it."""
    admitted = set(_UNGATED)
    for literal, positions in _LITERALS:
        if literal in text:
            admitted |= positions
    lower = text.lower()
    for literal, positions in _FOLDED:
        if literal in lower:
            admitted |= positions
    digits: bool | None = None
    chosen: list[Rule] = []
    for position in sorted(admitted):
        rule = RULES[position]
        if rule.also and not any(literal in text for literal in rule.also):
            continue
        if rule.digits:
            if digits is None:
                digits = _DIGIT_RUN.search(text) is not None
            if not digits:
                continue
        chosen.append(rule)
    return chosen


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return any(start < t_end and t_start < end for t_start, t_end in taken)


def scan(text: str) -> tuple[Hit, ...]:
    """Return the hits in ``text``, sorted by position, never overlapping each other
    or a placeholder already in the text. Pure; does not raise on any input."""
    if len(text) < _MIN_LENGTH or (
        GATE_CHARS.isdisjoint(text) and not any(lit in text for lit in GATE_LITERALS)
    ):
        return ()
    taken: list[tuple[int, int]] = []
    if "<SECRET:" in text or "<PII:" in text:
        taken.extend(m.span() for m in _PLACEHOLDER.finditer(text))
    hits: list[Hit] = []
    for rule in _candidates(text):
        for match in rule.pattern.finditer(text):
            span: tuple[int, int] | None = rule.value_span(match)
            if rule.check is not None and span is not None:
                span = rule.check(match, span)
            if span is None or span[0] == span[1] or _overlaps(span[0], span[1], taken):
                continue
            taken.append(span)
            hits.append(Hit(rule.name, rule.kind, span[0], span[1]))
    hits.sort(key=lambda hit: hit.start)
    return tuple(hits)


_MAX_PASSES = 4


def _replace(text: str, hits: tuple[Hit, ...]) -> str:
    parts: list[str] = []
    cursor = 0
    for hit in hits:
        parts.append(text[cursor : hit.start])
        parts.append(f"<{hit.kind}:{hit.rule}>")
        cursor = hit.end
    parts.append(text[cursor:])
    return "".join(parts)


_CACHED_LENGTH = 256
_CLEAN_MAX = 16_384
_CLEAN: dict[str, None] = {}  # insertion-ordered: a bounded FIFO of clean texts


def redact(text: str) -> Redacted:
    """Return ``text`` normalised (:func:`normalise`) with every hit replaced by its
    placeholder (``<SECRET:name>`` or ``<PII:name>``) and the rule names that fired.
    The text may differ from the input when no rule fired (normalisation alone).

    A match that lost to a higher-priority overlapping one may leave a shorter match
    behind once the winner is a placeholder (``password=x=ghp_...``), so scanning is
    repeated on the result until nothing fires (at most a few passes): that makes
    ``redact`` idempotent.

    Short texts in which nothing fires (window titles, commands) repeat a lot
    in capture: they are remembered in a bounded set, so a repeat costs one
    lookup. A text in which something fired is never kept.
    """
    text = normalise(text)
    short = len(text) <= _CACHED_LENGTH
    if short and text in _CLEAN:
        return Redacted(text, ())
    result = _redact(text)
    if short and not result.rules:
        if len(_CLEAN) >= _CLEAN_MAX:
            _CLEAN.pop(next(iter(_CLEAN)), None)  # oldest first
        _CLEAN[text] = None
    return result


def _redact(text: str) -> Redacted:
    fired: list[str] = []
    for _ in range(_MAX_PASSES):
        hits = scan(text)
        if not hits:
            break
        text = _replace(text, hits)
        fired.extend(hit.rule for hit in hits)
    return Redacted(text, tuple(dict.fromkeys(fired)))


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """Return ``event`` with its free-text fields (:data:`REDACTED_FIELDS`) normalised
    and redacted and the fired rule names appended to ``redactions`` (each name once).

    When no field changes the *same* object is returned (the hot path allocates
    nothing); otherwise a new dict with new ``app``/``payload``/``redactions``.
    The input is never mutated.
    """
    payload = event.get("payload")
    app = event.get("app")
    ptype = payload.get("type") if isinstance(payload, Mapping) else None
    changes: dict[str, dict[str, str]] = {}
    fired: list[str] = []
    for container, field in REDACTED_FIELDS:
        holder = app if container == "app" else payload if container == ptype else None
        if not isinstance(holder, Mapping):
            continue
        value = holder.get(field)
        if not isinstance(value, str) or not value:
            continue
        result = redact(value)
        if result.text != value:
            changes.setdefault(container, {})[field] = result.text
            fired.extend(result.rules)
    if not changes:
        return event
    out = dict(event)
    for container, fields in changes.items():
        key = "app" if container == "app" else "payload"
        out[key] = {**out[key], **fields}
    trail = list(event.get("redactions") or [])
    trail.extend(name for name in dict.fromkeys(fired) if name not in trail)
    out["redactions"] = trail
    return out
