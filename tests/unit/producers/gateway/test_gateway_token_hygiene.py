"""Token file hygiene: malformed at start is an error; a malformed rewrite keeps
the last good set loudly; tokens can be revoked; per-token limits refuse."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from producers.gateway.auth import (
    DeviceIdentity,
    TokenFile,
    TokenFileError,
    hash_token,
)
from producers.gateway.errors import RateLimited
from producers.gateway.ratelimit import TokenLimiter

ALICE = DeviceIdentity("dev-1", "sub-1", "org-1")
BOB = DeviceIdentity("dev-2", "sub-2", "org-1")


def _bump(path: Path) -> None:
    """Make the next read see a change even within one mtime tick."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.mark.parametrize(
    "text", [b"{not json", b'{"abc": {"device_id": "d"}}', b"[1, 2]", b'{"\xff": 1}']
)
def test_a_malformed_file_is_an_error_at_start(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(text)
    with pytest.raises(TokenFileError, match=str(path)):
        TokenFile(path).tokens()


def test_a_malformed_rewrite_keeps_the_last_good_set_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.json"
    errors: list[str] = []
    store = TokenFile(path, on_reload_error=errors.append)
    alice = store.add(ALICE)
    assert set(store.tokens()) == {hash_token(alice)}
    path.write_text('{"half-written": ')
    _bump(path)
    with caplog.at_level(logging.ERROR, logger="producers.gateway.auth"):
        assert set(store.tokens()) == {hash_token(alice)}
        assert set(store.tokens()) == {hash_token(alice)}  # reported once per rewrite
    assert len(errors) == 1 and "tokens.json" in errors[0]
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "keeping the last good set of 1 tokens" in caplog.records[0].getMessage()
    path.write_text("{}")  # fixed: the new set applies
    _bump(path)
    assert store.tokens() == {}


def test_revoke_by_device_and_by_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = TokenFile(path)
    alice, bob = store.add(ALICE), store.add(BOB)
    running = TokenFile(path)
    assert len(running.tokens()) == 2
    assert store.revoke(device_id="dev-1") == 1
    _bump(path)
    assert set(running.tokens()) == {hash_token(bob)}
    assert store.revoke(token_hash=hash_token(bob)[:12].upper()) == 1
    _bump(path)
    assert running.tokens() == {}
    assert store.revoke(device_id="dev-1") == 0
    assert json.loads(path.read_text()) == {}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]  # no temp left
    del alice


@pytest.mark.parametrize("kwargs", [{}, {"token_hash": "abc"}])
def test_revoke_needs_a_target(tmp_path: Path, kwargs: dict[str, str]) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.add(ALICE)
    with pytest.raises(ValueError):
        store.revoke(**kwargs)


def test_token_limiter_counts_requests_and_bytes_per_token() -> None:
    limiter = TokenLimiter(requests_per_s=1, request_burst=2, bytes_per_s=100, byte_burst=1000)
    limiter.take_request("a", 0.0)
    limiter.take_request("a", 0.0)
    with pytest.raises(RateLimited) as err:
        limiter.take_request("a", 0.0)
    assert err.value.retry_after_s == pytest.approx(1.0)
    limiter.take_request("b", 0.0)  # another token has its own buckets
    limiter.take_bytes("a", 900, 0.0)
    with pytest.raises(RateLimited) as err:
        limiter.take_bytes("a", 200, 0.0)
    assert err.value.retry_after_s == pytest.approx(1.0)
    limiter.take_bytes("a", 200, 1.0)
