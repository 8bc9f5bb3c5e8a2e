"""Device tokens: stored hashed, checked for expiry, parsed strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.gateway.auth import (
    DeviceIdentity,
    TokenFile,
    authenticate,
    bearer_token,
    hash_token,
    parse_tokens,
)
from producers.gateway.errors import Unauthorized

ALICE = DeviceIdentity("dev-1", "sub-1", "org-1", expires_at=2_000)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer   abc  ", "abc"), ("BEARER x.y-z", "x.y-z")],
)
def test_bearer_header_yields_its_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   ", "abc"])
def test_missing_or_foreign_authorization_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized) as err:
        bearer_token(header)
    assert err.value.reason == "missing_token" and err.value.status == 401


@pytest.mark.parametrize(
    ("token", "now", "reason"),
    [
        ("right", 1_000, None),
        ("right", 1_999, None),
        ("right", 2_000, "expired_token"),
        ("wrong", 1_000, "invalid_token"),
        ("", 1_000, "invalid_token"),
    ],
)
def test_authenticate(token: str, now: int, reason: str | None) -> None:
    tokens = {hash_token("right"): ALICE}
    if reason is None:
        assert authenticate(tokens, token, now) == ALICE
    else:
        with pytest.raises(Unauthorized) as err:
            authenticate(tokens, token, now)
        assert err.value.reason == reason


def test_token_file_stores_only_hashes_and_new_tokens_work(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = TokenFile(path)
    first = store.add(ALICE)
    second = store.add(DeviceIdentity("dev-2", "sub-2", "org-1"))
    text = path.read_text()
    assert first not in text and second not in text
    assert set(json.loads(text)) == {hash_token(first), hash_token(second)}
    assert path.stat().st_mode & 0o777 == 0o600
    assert authenticate(store.tokens(), first, 0) == ALICE
    assert authenticate(TokenFile(path).tokens(), second, 0).device_id == "dev-2"


def test_token_file_sees_tokens_added_while_running(tmp_path: Path) -> None:
    running = TokenFile(tmp_path / "tokens.json")
    assert running.tokens() == {}
    token = TokenFile(tmp_path / "tokens.json").add(ALICE)
    assert authenticate(running.tokens(), token, 0) == ALICE


def test_a_broken_rewrite_keeps_the_previous_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    running = TokenFile(path)
    token = running.add(ALICE)
    assert running.tokens()
    path.write_text("{not json")
    path.touch()
    assert authenticate(running.tokens(), token, 0) == ALICE
    with pytest.raises(ValueError):
        TokenFile(path).tokens()


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"short": {}},
        {"a" * 64: {"device_id": "d", "subject_id": "s"}},
        {"a" * 64: {"device_id": "", "subject_id": "s", "org_id": "o"}},
        {"a" * 64: {"device_id": "d", "subject_id": "s", "org_id": "o", "expires_at": "soon"}},
        {"a" * 64: {"device_id": "d", "subject_id": "s", "org_id": "o", "expires_at": True}},
    ],
)
def test_malformed_token_entries_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_tokens(raw)
