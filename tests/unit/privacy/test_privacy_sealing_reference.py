"""Batch sealing and action encryption match their plain reference forms.

`seal_batch` and `encrypt_action_content` are shaped for the stream worker's
hot path (lookup tables, the Mapping check skipped for dicts, base64 through
binascii). The references below are the straightforward forms; on random
events the fast ones must give the same events, the same sealed plaintext
(the layout sinks parse) and the same tokens.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
from collections.abc import Mapping
from typing import Any

import pytest

from privacy.content_keys import open_clean_batch, seal_clean_batch
from privacy.keystore import DataKey
from privacy.shredding import (
    ACTION_ENCRYPTED_FIELDS,
    ENCRYPTED_FIELDS,
    TOKEN_PREFIX,
    action_aad,
    cipher_for,
    encrypt_action_content,
    seal_batch,
)
from tests.unit.privacy.privacy_events import PAYLOADS, make_event

KEY = DataKey("k-ref", bytes(range(32)))
AAD = b"candor.batch.v1|s|d|1|9|b"
CLEARED = {
    ("TerminalCommand", "command"): "",
    ("ScreenFrame", "ref"): "",
    ("ScreenFrame", "phash"): "",
}
VALUES: list[Any] = [None, "", "x", 'héllo ✓ "quoted" \\ back\nslash', "enc1:k:looks-like", 7]


def _reference_seal(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The sealed events and the JSON plaintext, written the plain way."""
    entries: list[list[Any]] = []
    out: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        copied = dict(event)
        for key in ("app", "payload"):  # the app's fields first, then the payload's
            holder = event.get(key)
            if not isinstance(holder, Mapping):
                continue
            container = "app" if key == "app" else str(holder.get("type"))
            for field in [f for c, f in ENCRYPTED_FIELDS if c == container]:
                value = holder.get(field)
                if isinstance(value, str) and value:
                    if copied[key] is holder:
                        copied[key] = dict(holder)
                    entries.append([index, event["event_id"], f"{key}.{field}", value])
                    copied[key][field] = CLEARED.get((container, field))
        out.append(copied)
    if not entries:
        return out, None
    return out, json.dumps(entries, ensure_ascii=False, separators=(",", ":"))


def _random_events(rng: random.Random) -> list[dict[str, Any]]:
    events = []
    for i in range(rng.randrange(1, 9)):
        event = make_event(rng.choice(sorted(PAYLOADS)), seq=i, event_id=f"e-{rng.random()}")
        for container, field in ENCRYPTED_FIELDS:
            holder = event["app"] if container == "app" else event["payload"]
            if (container == "app" or holder["type"] == container) and rng.random() < 0.7:
                holder[field] = rng.choice(VALUES)
        if rng.random() < 0.1:
            event["app"] = None
        if rng.random() < 0.05:
            event["event_id"] = rng.choice([17, None, 'quote " and ✓'])
        events.append(event)
    return events


@pytest.mark.parametrize("seed", range(300))
def test_seal_batch_matches_the_reference(seed: int) -> None:
    events = _random_events(random.Random(seed))
    before = copy.deepcopy(events)
    sealed, content = seal_batch(events, KEY, AAD)
    expected, plaintext = _reference_seal(before)
    assert events == before  # not mutated
    assert sealed == expected
    if plaintext is None:
        assert content is None
    else:
        assert content is not None
        opened = cipher_for(KEY.key).decrypt(content[:12], content[12:], AAD)
        assert opened == plaintext.encode("utf-8")


def _reference_token(value: str, nonce: bytes, aad: bytes) -> str:
    sealed = cipher_for(KEY.key).encrypt(nonce, value.encode("utf-8"), aad)
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{TOKEN_PREFIX}{KEY.key_id}:{body}"


@pytest.mark.parametrize("seed", range(100))
def test_action_tokens_match_the_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    action: dict[str, Any] = {"action_id": f"a-{seed}", "subject_id": "s", "kind": "typing"}
    for field in ACTION_ENCRYPTED_FIELDS:
        action[field] = rng.choice([*VALUES[:5], "x" * rng.randrange(1, 300)])
    drawn: list[bytes] = []

    def urandom(n: int) -> bytes:
        drawn.append(rng.randbytes(n))
        return drawn[-1]

    monkeypatch.setattr(os, "urandom", urandom)
    encrypted = encrypt_action_content(action, KEY)
    nonces = b"".join(drawn)
    nonce_of = {f: nonces[12 * i : 12 * i + 12] for i, f in enumerate(ACTION_ENCRYPTED_FIELDS)}
    assert len(drawn) <= 1
    for field in ACTION_ENCRYPTED_FIELDS:
        value = action[field]
        if isinstance(value, str) and value:
            token = _reference_token(value, nonce_of[field], action_aad(action, field))
            assert encrypted[field] == token
        else:
            assert encrypted[field] == value


class _OneKey:
    """Keys with one live key (``KEY``) for every subject."""

    def live(self, subject: str) -> DataKey | None:
        return KEY

    def key_for_id(self, key_id: str) -> bytes:
        return KEY.key

    def is_erased(self, subject: str) -> bool:
        return False


@pytest.mark.parametrize("seed", range(50))
def test_a_clean_batch_spans_the_lowest_to_the_highest_seq(seed: int) -> None:
    rng = random.Random(seed)
    events = _random_events(rng)
    for event in events:  # seqs out of order, repeats allowed
        event["seq"] = rng.randrange(0, 6)
    batch = seal_clean_batch("b-1", events, _OneKey())
    seqs = [e["seq"] for e in events]
    assert (batch["first_seq"], batch["last_seq"]) == (min(seqs), max(seqs))
    if batch["content"] is not None:
        open_clean_batch(batch, _OneKey())  # the associated data names that range
