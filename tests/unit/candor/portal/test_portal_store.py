"""Invites are one-time, hashed and expiring; sessions expire and end with erasure."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from candor.portal.store import InvalidInvite, PortalStore, hash_token


@pytest.fixture
def store(tmp_path: Path) -> PortalStore:
    return PortalStore(tmp_path / "portal" / "portal.sqlite3")


def test_an_invite_signs_in_once(store: PortalStore) -> None:
    invite = store.issue_invite("subj-a", ttl_s=60, now=1000)
    assert store.redeem(invite.token, now=1001) == "subj-a"
    with pytest.raises(InvalidInvite):
        store.redeem(invite.token, now=1002)


def test_an_expired_or_unknown_invite_is_refused(store: PortalStore) -> None:
    invite = store.issue_invite("subj-a", ttl_s=60, now=1000)
    with pytest.raises(InvalidInvite):
        store.redeem(invite.token, now=1060)
    with pytest.raises(InvalidInvite):
        store.redeem("made-up", now=1000)


def test_only_the_hash_of_a_token_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite3"
    store = PortalStore(path)
    invite = store.issue_invite("subj-a", ttl_s=60, now=1000)
    sid, _ = store.open_session("subj-a", ttl_s=60, now=1000)
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert invite.token.encode() not in raw and sid.encode() not in raw
    assert hash_token(invite.token).encode() in raw
    assert path.stat().st_mode & 0o077 == 0


def test_two_browsers_racing_for_one_link_get_one_session(store: PortalStore) -> None:
    invite = store.issue_invite("subj-a", ttl_s=60, now=1000)
    results: list[str] = []

    def redeem() -> None:
        try:
            results.append(store.redeem(invite.token, now=1001))
        except InvalidInvite:
            results.append("refused")

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["refused"] * 7 + ["subj-a"]


def test_sessions_expire_and_end(store: PortalStore) -> None:
    sid, session = store.open_session("subj-a", ttl_s=60, now=1000)
    assert store.session(sid, now=1059) == session
    assert store.session(sid, now=1060) is None
    sid2, _ = store.open_session("subj-a", ttl_s=60, now=1000)
    store.end_session(sid2)
    assert store.session(sid2, now=1001) is None


def test_erasure_ends_every_session_and_voids_unused_invites(store: PortalStore) -> None:
    sids = [store.open_session("subj-a", 60, 1000)[0] for _ in range(2)]
    other, _ = store.open_session("subj-b", 60, 1000)
    invite = store.issue_invite("subj-a", 60, 1000)
    assert store.end_subject("subj-a") == 2
    assert all(store.session(s, 1001) is None for s in sids)
    assert store.session(other, 1001) is not None
    with pytest.raises(InvalidInvite):
        store.redeem(invite.token, 1001)


def test_each_session_gets_its_own_csrf_token(store: PortalStore) -> None:
    _, a = store.open_session("subj-a", 60, 1000)
    _, b = store.open_session("subj-a", 60, 1000)
    assert a.csrf != b.csrf and len(a.csrf) >= 32


@pytest.mark.parametrize("subject", ["", " padded", "padded "])
def test_an_invalid_subject_gets_no_invite(store: PortalStore, subject: str) -> None:
    with pytest.raises(ValueError):
        store.issue_invite(subject, 60, 1000)
