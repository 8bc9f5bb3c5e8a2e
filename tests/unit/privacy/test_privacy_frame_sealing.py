"""Sealed frames: only the subject's key, subject and ref open them; erasure ends that."""

from __future__ import annotations

import pytest

from privacy.frame_sealing import FrameHeader, open_frame, read_header, seal_frame
from privacy.keystore import InMemoryKeyStore, SubjectErased
from privacy.shredding import UndecryptableField

DATA = b"\x89PNG frame bytes" * 20


def _sealed(store: InMemoryKeyStore) -> bytes:
    key = store.get_or_create("alice")
    header = FrameHeader(key.key_id, "image/png", 64, 32, 123, {"email": 2})
    return seal_frame(DATA, key, "alice", "ab" * 32, header)


def test_a_sealed_frame_opens_for_its_subject_and_ref() -> None:
    store = InMemoryKeyStore()
    blob = _sealed(store)
    assert DATA not in blob
    opened = open_frame(blob, store, "alice", "ab" * 32)
    assert opened.data == DATA and opened.header.trail == {"email": 2}
    assert read_header(blob).width == 64


@pytest.mark.parametrize("subject, ref", [("bob", "ab" * 32), ("alice", "cd" * 32)])
def test_a_frame_moved_to_another_subject_or_ref_does_not_open(subject: str, ref: str) -> None:
    store = InMemoryKeyStore()
    with pytest.raises(UndecryptableField):
        open_frame(_sealed(store), store, subject, ref)


def test_an_edited_header_does_not_open() -> None:
    store = InMemoryKeyStore()
    blob = _sealed(store).replace(b'"width":64', b'"width":65')
    with pytest.raises(UndecryptableField):
        open_frame(blob, store, "alice", "ab" * 32)


def test_destroying_the_key_makes_every_frame_unreadable() -> None:
    store = InMemoryKeyStore()
    blob = _sealed(store)
    store.destroy("alice")
    with pytest.raises(SubjectErased):
        open_frame(blob, store, "alice", "ab" * 32)


def test_garbage_is_not_a_sealed_frame() -> None:
    with pytest.raises(UndecryptableField):
        open_frame(b"CFR1\x00\x00\x00\x05{}", InMemoryKeyStore(), "alice", "ab" * 32)
