"""The frame store's contract, run against both backends: the filesystem and a
real S3-compatible server (S3Proxy)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from backends.frame_store import (
    FilesystemFrameStore,
    FrameNotFound,
    FrameStore,
    S3FrameStore,
    open_frame_store,
)
from tests.integration.s3proxy import S3Server, s3_server

__all__ = ["s3_server"]


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FrameStore:
    if request.param == "filesystem":
        return FilesystemFrameStore(tmp_path / "frames")
    server: S3Server = request.getfixturevalue("s3_server")
    found = open_frame_store(server.frame_settings(f"frames-{uuid.uuid4().hex[:8]}"), tmp_path)
    assert isinstance(found, S3FrameStore)
    return found


def _frame(n: int) -> tuple[str, bytes]:
    blob = f"sealed frame {n}".encode() * 50
    return hashlib.sha256(blob).hexdigest(), blob


def test_put_is_idempotent_and_per_subject(store: FrameStore) -> None:
    digest, blob = _frame(1)
    assert store.put("alice", digest, blob) is True
    assert store.put("alice", digest, b"other bytes") is False
    assert store.get("alice", digest) == blob
    assert store.exists("alice", digest) and not store.exists("bob", digest)
    with pytest.raises(FrameNotFound):
        store.get("bob", digest)
    assert store.list("alice") == [digest] and store.list("bob") == []


def test_delete_subject_removes_only_that_subjects_frames(store: FrameStore) -> None:
    mine = [_frame(n) for n in range(3)]
    for digest, blob in mine:
        store.put("alice", digest, blob)
    other, blob = _frame(9)
    store.put("bob", other, blob)
    assert store.delete_subject("alice") == 3
    assert store.list("alice") == [] and store.delete_subject("alice") == 0
    assert store.get("bob", other) == blob


def test_a_malformed_ref_is_refused(store: FrameStore) -> None:
    with pytest.raises(ValueError):
        store.put("alice", "../../etc/passwd", b"x")


def test_filesystem_paths_do_not_name_the_subject(tmp_path: Path) -> None:
    fs = FilesystemFrameStore(tmp_path)
    digest, blob = _frame(1)
    fs.put("alice@example.com", digest, blob)
    names = [p.name for p in tmp_path.rglob("*")]
    assert digest in names and not any("alice" in n for n in names)
    assert not any(n.startswith(".put-") for n in names)
