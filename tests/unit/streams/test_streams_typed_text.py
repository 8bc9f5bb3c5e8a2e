"""Issue 18 in the route step: no typed text per event (option (a)), typed secrets
split over events redacted in the merged burst, window titles as their own
scope, seq regressions marked and counted.

Each test drives `route_batch` and the device's reducers as the worker does,
then looks where a user would: the `capture.clean` record (Avro-encoded), the
`events` row the sink makes of it, and the action."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from privacy.consent import ConsentPolicy
from privacy.redaction import redact
from privacy.rules import rule_names
from privacy.scope import Scope
from schemas.codec import decode, encode, encode_event
from sinks.rows import EVENT_COLUMNS, event_row
from streams.activity import ActivityConfig, DeviceActivity, Outputs
from streams.dedup import DeviceSeen
from streams.keystrokes import KEY_CLASS_CHARACTER, TYPED, withhold_typed
from streams.router import SEQ_REGRESSION, RawMessage, RouteResult, route_batch
from tests.unit.privacy.privacy_events import ORG, SUBJECT, TUESDAY_10_UTC, make_event

NOW = TUESDAY_10_UTC + 60_000_000
ALL = frozenset(Scope)
CORPUS = Path(__file__).resolve().parents[2] / "data" / "redaction" / "corpus.jsonl"
TEXT = EVENT_COLUMNS.index("text")
KEY_NAME = EVENT_COLUMNS.index("key_name")
TITLE = EVENT_COLUMNS.index("window_title")
HOST = EVENT_COLUMNS.index("url_host")


def policy(scopes: frozenset[Scope] = ALL) -> ConsentPolicy:
    return ConsentPolicy(
        subject_id=SUBJECT,
        org_id=ORG,
        version=2,
        scopes=scopes,
        changed_by="admin",
        changed_at=TUESDAY_10_UTC - 10,
        reason=None,
    )


class Pipeline:
    """One device through the worker's pure steps: route, then fold."""

    def __init__(self, scopes: frozenset[Scope] = ALL) -> None:
        self.policy = policy(scopes)
        self.device = DeviceActivity()
        self.offset = 0

    def run(self, events: list[dict[str, Any]]) -> tuple[RouteResult, Outputs]:
        batch = []
        for event in events:
            batch.append(
                RawMessage(b"dev-1", encode_event(event), "capture.events", 0, self.offset)
            )
            self.offset += 1
        result = route_batch(
            batch,
            now=NOW,
            consent=lambda s: self.policy,
            hours=lambda o: None,
            seen=lambda d: self.device.seen,
        )
        return result, self.device.fold(result.clean, NOW, ActivityConfig())


def keys(chunks: list[str], first_seq: int = 1, title: str = "Terminal") -> list[dict[str, Any]]:
    """KeyInput events typing ``chunks``, 10 ms apart, then a click that closes the burst."""
    events = []
    for i, chunk in enumerate(chunks):
        payload: dict[str, Any] = {
            "type": "KeyInput",
            "key": None,
            "text": chunk,
            "modifiers": [],
            "is_secure_field": False,
            "count": max(1, len(chunk)),
        }
        events.append(
            make_event(
                "KeyInput",
                event_id=str(uuid.uuid4()),
                seq=first_seq + i,
                ts=TUESDAY_10_UTC + i * 10_000,
                payload=payload,
                app={"app_name": "Terminal", "window_title": title, "url_host": None},
            )
        )
    events.append(
        make_event(
            "MouseClick",
            event_id=str(uuid.uuid4()),
            seq=first_seq + len(chunks),
            ts=TUESDAY_10_UTC + len(chunks) * 10_000,
        )
    )
    return events


def stored(clean: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """What `capture.clean` holds for ``clean`` (decoded) and the `events` row of it."""
    _, datum = decode(encode("CaptureEvent", clean, check_domains=False))
    return datum, event_row(datum)


def samples() -> dict[str, tuple[str, list[str]]]:
    """The shortest labelled corpus text of each rule: ``{rule: (text, secrets)}``."""
    found: dict[str, tuple[str, list[str]]] = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rules = {e["rule"] for e in record["expect"]}
        text = record["text"]
        if len(rules) == 1 and text.isascii():
            rule = rules.pop()
            if rule not in found or len(text) < len(found[rule][0]):
                found[rule] = (text, [e["match"] for e in record["expect"]])
    return found


SAMPLES = samples()


def test_every_rule_has_a_typed_sample() -> None:
    assert set(SAMPLES) == set(rule_names())


def splits(text: str, parts: int) -> list[list[str]]:
    """``text`` cut into ``parts`` chunks, the first cut at every position, the
    other cuts spread evenly over the rest."""
    out = []
    for first in range(1, len(text) - parts + 2):
        rest = text[first:]
        step = len(rest) / (parts - 1)
        cuts = [first] + [first + round(step * k) for k in range(1, parts - 1)] + [len(text)]
        chunks = [text[:first]] + [text[a:b] for a, b in itertools.pairwise(cuts)]
        if all(chunks) and "".join(chunks) == text:
            out.append(chunks)
    return out


@pytest.mark.parametrize("parts", [2, 3, 4])
@pytest.mark.parametrize("rule", sorted(SAMPLES))
def test_a_secret_split_over_events_is_never_stored_per_event(rule: str, parts: int) -> None:
    text, secrets = SAMPLES[rule]
    expected = redact(text).text
    cases = splits(text, parts)
    assert cases
    for chunks in cases:
        result, out = Pipeline().run(keys(chunks))
        typed = [e for e in result.clean if e["payload"]["type"] == "KeyInput"]
        assert len(typed) == parts
        for clean in typed:
            record, row = stored(clean)
            assert TYPED not in record and record["payload"]["text"] is None
            assert row[TEXT] is None and row[KEY_NAME] is None
            assert record["payload"]["count"] >= 1  # the count stays
        [action] = [a for a in out.actions if a["kind"] == "typing"]
        assert action["text"] == expected, chunks
        assert rule in action["redactions"]
        for secret in secrets:
            assert secret not in action["text"]


def test_a_secret_typed_key_by_key_leaves_key_classes_only() -> None:
    secret = "sk_live_51HxQ2w3E4r5T6y7U8i9O0pA"
    events = []
    for i, char in enumerate(f"key {secret}"):
        payload = {
            "type": "KeyInput",
            "key": char,
            "text": None,
            "modifiers": ["shift"] if char.isupper() else [],
            "is_secure_field": False,
            "count": 1,
        }
        events.append(
            make_event(
                "KeyInput",
                event_id=str(uuid.uuid4()),
                seq=i + 1,
                ts=TUESDAY_10_UTC + i * 1000,
                payload=payload,
            )
        )
    events.append(
        make_event(
            "MouseClick",
            event_id=str(uuid.uuid4()),
            seq=len(events) + 1,
            ts=TUESDAY_10_UTC + len(events) * 1000,
        )
    )
    result, out = Pipeline().run(events)
    rows = [stored(e)[1] for e in result.clean if e["payload"]["type"] == "KeyInput"]
    assert {row[KEY_NAME] for row in rows} == {KEY_CLASS_CHARACTER}
    assert all(row[TEXT] is None for row in rows)
    [action] = [a for a in out.actions if a["kind"] == "typing"]
    assert action["text"] == "key <SECRET:stripe_key>"


@pytest.mark.parametrize(
    ("key", "modifiers", "kept"),
    [
        ("Enter", [], "Enter"),
        ("Backspace", [], "Backspace"),
        ("ArrowLeft", [], "ArrowLeft"),
        ("c", ["ctrl"], "c"),
        ("p", ["ctrl", "shift"], "p"),
        ("a", [], KEY_CLASS_CHARACTER),
        ("A", ["shift"], KEY_CLASS_CHARACTER),
        ("7", [], KEY_CLASS_CHARACTER),
        ("e\u0301", [], KEY_CLASS_CHARACTER),
        ("\u00df", [], KEY_CLASS_CHARACTER),
        ("F5", [], "F5"),
        ("Shift", ["shift"], "Shift"),
        ("capslock", [], "capslock"),
        (None, [], None),
    ],
)
def test_named_keys_and_shortcuts_stay_characters_become_a_class(
    key: str | None,
    modifiers: list[str],
    kept: str | None,
) -> None:
    event = make_event(
        "KeyInput",
        payload={
            "type": "KeyInput",
            "key": key,
            "text": None,
            "modifiers": modifiers,
            "is_secure_field": False,
            "count": 1,
        },
    )
    out = withhold_typed(event)
    assert out["payload"]["key"] == kept and out["payload"]["text"] is None
    assert event["payload"]["key"] == key  # not mutated


def test_events_without_typed_text_are_passed_as_they_are() -> None:
    click = make_event("MouseClick")
    assert withhold_typed(click) is click


def test_typed_text_withheld_without_keystroke_consent_stays_withheld() -> None:
    result, out = Pipeline(frozenset({Scope.ACTIVITY_METADATA})).run(keys(["hunter", "2"]))
    assert all(e["payload"].get("text") is None for e in result.clean)
    [action] = [a for a in out.actions if a["kind"] == "typing"]
    assert action["text"] is None


# --- window titles ----------------------------------------------------------------


def titled(seq: int) -> dict[str, Any]:
    return make_event(
        "KeyInput",
        event_id=str(uuid.uuid4()),
        seq=seq,
        ts=TUESDAY_10_UTC + seq * 1000,
        app={
            "app_name": "Mail",
            "window_title": "Re: offer letter - Ann Lee",
            "url_host": "mail.example.com",
        },
    )


@pytest.mark.parametrize(
    ("scopes", "kept"),
    [
        (frozenset({Scope.ACTIVITY_METADATA}), False),
        (frozenset({Scope.ACTIVITY_METADATA, Scope.KEYSTROKE_CONTENT}), False),
        (ALL - {Scope.WINDOW_TITLES}, False),
        (frozenset({Scope.ACTIVITY_METADATA, Scope.WINDOW_TITLES}), True),
        (ALL, True),
    ],
)
def test_titles_and_hosts_need_the_window_titles_scope(
    scopes: frozenset[Scope],
    kept: bool,
) -> None:
    events = [
        titled(1),
        titled(2),
        make_event("MouseClick", event_id=str(uuid.uuid4()), seq=3, ts=TUESDAY_10_UTC + 3000),
    ]
    result, out = Pipeline(scopes).run(events)
    for clean in result.clean:
        record, row = stored(clean)
        assert record["app"]["app_name"] in ("Mail", "Code")  # the app name is metadata
        assert (row[TITLE] is not None, row[HOST] is not None) == (kept, kept)
    actions = out.actions
    assert actions and all((a["window_title"] is not None) == kept for a in actions)


# --- seq regressions ----------------------------------------------------------------


def click(seq: int) -> dict[str, Any]:
    return make_event(
        "MouseClick", event_id=str(uuid.uuid4()), seq=seq, ts=TUESDAY_10_UTC + seq * 1000
    )


def test_seq_regressions_are_marked_and_counted_never_silent() -> None:
    pipe = Pipeline()
    first, _ = pipe.run([click(5), click(3), click(4)])
    marked = {e["seq"]: SEQ_REGRESSION in e["redactions"] for e in first.clean}
    assert marked == {5: False, 3: True, 4: True}
    assert first.seq_regressions == {"dev-1": 2}
    # the device's state goes through the table's JSON between batches
    pipe.device.seen = DeviceSeen.from_dict(json.loads(json.dumps(pipe.device.seen.to_dict())))
    second, _ = pipe.run([click(9), click(7), click(8), click(6), click(7)])
    marked = {e["seq"]: SEQ_REGRESSION in e["redactions"] for e in second.clean}
    assert marked == {9: False, 7: True, 8: True, 6: True}
    assert second.seq_regressions == {"dev-1": 3}
    assert second.drops["duplicate"] == 1  # 7 again: a retry, not a regression
    rows = [stored(e)[1] for e in second.clean]
    trail = EVENT_COLUMNS.index("redactions")
    assert sorted(r[EVENT_COLUMNS.index("seq")] for r in rows if SEQ_REGRESSION in r[trail]) == [
        6,
        7,
        8,
    ]


def test_in_order_and_retried_events_are_not_regressions() -> None:
    pipe = Pipeline()
    result, _ = pipe.run([click(1), click(2), click(2), click(3), click(1)])
    assert result.seq_regressions == {} and result.drops["duplicate"] == 2
    assert all(SEQ_REGRESSION not in e["redactions"] for e in result.clean)
