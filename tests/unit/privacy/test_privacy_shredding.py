from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from privacy.shredding import (
    FileKeyStore,
    InMemoryKeyStore,
    KeyStore,
    SubjectErased,
    UndecryptableField,
    WrongMasterKey,
    decrypt_action_content,
    decrypt_event_content,
    decrypt_field,
    encrypt_action_content,
    encrypt_event_content,
    encrypt_field,
    field_aad,
    is_encrypted,
)
from tests.unit.privacy.privacy_events import PAYLOADS, SUBJECT, make_event

MASTER = bytes(range(32))
AAD = b"candor.v1|s|e|text"


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    if request.param == "memory":
        return InMemoryKeyStore()
    return FileKeyStore(tmp_path / "keys.json", MASTER)


def test_field_round_trip(store: KeyStore) -> None:
    key = store.get_or_create("alice")
    token = encrypt_field("typed secret ü", key, AAD)
    assert token.startswith(f"enc1:{key.key_id}:") and "typed" not in token
    assert decrypt_field(token, store, AAD) == "typed secret ü"
    assert encrypt_field("typed secret ü", key, AAD) != token  # fresh nonce each time


def test_one_key_per_subject(store: KeyStore) -> None:
    a1, a2 = store.get_or_create("alice"), store.get_or_create("alice")
    b = store.get_or_create("bob")
    assert a1 == a2 and a1.key_id != b.key_id and a1.key != b.key
    assert store.get("alice") == a1.key and store.get("carol") is None


def test_destroyed_key_makes_ciphertexts_unreadable(store: KeyStore) -> None:
    token = encrypt_field("hello", store.get_or_create("alice"), AAD)
    assert store.destroy("alice") is True
    assert store.destroy("alice") is False
    assert store.get("alice") is None
    with pytest.raises(SubjectErased):
        decrypt_field(token, store, AAD)
    fresh = store.get_or_create("alice")  # new capture after erasure gets a new key
    with pytest.raises(SubjectErased):
        decrypt_field(token, store, AAD)
    assert decrypt_field(encrypt_field("x", fresh, AAD), store, AAD) == "x"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # tampered ciphertext
        lambda t: "enc1:ffffffffffffffff:" + t.split(":", 2)[2],  # unknown key id
        lambda t: "enc1:" + t.split(":", 2)[1] + ":!!!",  # not base64
        lambda t: "enc1:" + t.split(":", 2)[1] + ":AAAA",  # too short
        lambda t: "enc1:nocolon",
        lambda t: "plain text",
    ],
)
def test_corrupt_tokens_are_undecryptable(store: KeyStore, mangle: object) -> None:
    token = encrypt_field("hello", store.get_or_create("alice"), AAD)
    with pytest.raises(UndecryptableField):
        decrypt_field(mangle(token), store, AAD)  # type: ignore[operator]


def test_ciphertext_is_bound_to_its_associated_data(store: KeyStore) -> None:
    token = encrypt_field("hello", store.get_or_create("alice"), AAD)
    with pytest.raises(UndecryptableField):
        decrypt_field(token, store, b"candor.v1|s|other-event|text")


def test_file_store_persists_wrapped_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = FileKeyStore(path, MASTER)
    key = first.get_or_create("alice")
    token = encrypt_field("hello", key, AAD)
    raw = path.read_text()
    assert key.key.hex() not in raw and "alice" in raw
    reopened = FileKeyStore(path, MASTER)
    assert decrypt_field(token, reopened, AAD) == "hello"
    reopened.destroy("alice")
    assert "alice" not in path.read_text()  # the tombstone holds only the key id
    with pytest.raises(SubjectErased):
        decrypt_field(token, FileKeyStore(path, MASTER), AAD)
    assert not [p for p in tmp_path.iterdir() if p.name != "keys.json"]  # no temp left


def test_wrong_master_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    FileKeyStore(path, MASTER).get_or_create("alice")
    with pytest.raises(WrongMasterKey):
        FileKeyStore(path, bytes(32))


def test_tampered_wrapped_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    FileKeyStore(path, MASTER).get_or_create("alice")
    document = json.loads(path.read_text())
    FileKeyStore(path, MASTER).get_or_create("bob")
    other = json.loads(path.read_text())
    document["subjects"]["alice"]["wrapped"] = other["subjects"]["bob"]["wrapped"]
    path.write_text(json.dumps(document))
    with pytest.raises(WrongMasterKey):
        FileKeyStore(path, MASTER).get("alice")


@pytest.mark.parametrize(
    ("payload_type", "field"),
    [("KeyInput", "text"), ("TerminalCommand", "command"), ("IdeEdit", "diff")],
)
def test_event_content_round_trip(store: KeyStore, payload_type: str, field: str) -> None:
    event = make_event(payload_type)
    before = copy.deepcopy(event)
    sealed = encrypt_event_content(event, store)
    assert event == before  # not mutated
    assert is_encrypted(sealed["payload"][field])
    assert is_encrypted(sealed["app"]["window_title"])
    assert sealed["app"]["app_name"] == "Code"  # metadata stays in clear
    assert decrypt_event_content(sealed, store) == event


def test_empty_fields_stay_as_they_are(store: KeyStore) -> None:
    event = make_event("KeyInput", payload={**PAYLOADS["KeyInput"], "text": None, "key": None})
    event["app"]["window_title"] = ""
    event["app"]["url_host"] = None
    assert encrypt_event_content(event, store) == event
    assert store.get(SUBJECT) is None  # no key made for nothing


def test_erased_subject_events(store: KeyStore) -> None:
    sealed = encrypt_event_content(make_event("TerminalCommand"), store)
    store.destroy(SUBJECT)
    with pytest.raises(SubjectErased):
        decrypt_event_content(sealed, store)
    shown = decrypt_event_content(sealed, store, erased="<erased>")
    assert shown["payload"]["command"] == "<erased>"
    assert shown["app"]["window_title"] == "<erased>"


def test_token_moved_to_another_event_does_not_decrypt(store: KeyStore) -> None:
    sealed = encrypt_event_content(make_event("KeyInput"), store)
    moved = make_event("KeyInput", event_id="another-event")
    moved["payload"]["text"] = sealed["payload"]["text"]
    with pytest.raises(UndecryptableField):
        decrypt_event_content(moved, store)
    assert field_aad(sealed, "text") != field_aad(moved, "text")


@pytest.mark.parametrize("lookalike", ["enc1:x:secret", "enc1:", "enc1:deadbeef:AAAA"])
def test_content_that_looks_like_a_token_is_encrypted(store: KeyStore, lookalike: str) -> None:
    """Typed text or a window title starting with ``enc1:`` is still content: it
    is published as a real token and decrypts back to exactly what was typed."""
    event = make_event("KeyInput", payload={**PAYLOADS["KeyInput"], "text": lookalike})
    event["app"]["window_title"] = lookalike
    sealed = encrypt_event_content(event, store)
    assert sealed["payload"]["text"] != lookalike
    assert sealed["app"]["window_title"] != lookalike
    key = store.get_or_create(SUBJECT)
    assert sealed["payload"]["text"].startswith(f"enc1:{key.key_id}:")
    assert decrypt_event_content(sealed, store) == event


def test_action_content_that_looks_like_a_token_is_encrypted(store: KeyStore) -> None:
    action = {
        "subject_id": SUBJECT,
        "action_id": "a1",
        "text": "enc1:x:secret",
        "window_title": "enc1:k:title",
        "command": None,
    }
    key = store.get_or_create(SUBJECT)
    sealed = encrypt_action_content(action, key)
    assert sealed["text"].startswith(f"enc1:{key.key_id}:")
    assert sealed["window_title"].startswith(f"enc1:{key.key_id}:")
    assert decrypt_action_content(sealed, store) == action
