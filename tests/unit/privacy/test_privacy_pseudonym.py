from __future__ import annotations

import re

import pytest

from privacy.pseudonym import (
    KeyRing,
    UnknownKeyVersion,
    UnknownOrg,
    WeakKey,
    key_version_of,
    pseudonymize,
)

K1 = bytes(range(32))
K2 = bytes(range(1, 33))


def test_pseudonym_is_stable_and_shaped() -> None:
    first = pseudonymize("alice@example.com", K1, 1)
    assert first == pseudonymize("alice@example.com", K1, 1)
    assert re.fullmatch(r"s1_[a-z2-7]{26}", first)
    assert "alice" not in first


def test_pseudonym_known_answer() -> None:
    """Pins the construction: changing it would orphan every stored pseudonym."""
    assert pseudonymize("alice@example.com", b"k" * 32, 1) == "s1_53ceo3nwbytx2i4gxtknn2ogou"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("alice", K1, 1), ("bob", K1, 1)),  # different people
        (("alice", K1, 1), ("alice", K2, 1)),  # different orgs' keys
        (("alice", K1, 1), ("alice", K1, 2)),  # version is part of the name
        (("alice", K1, 1), ("Alice", K1, 1)),  # identities are compared exactly
    ],
)
def test_pseudonyms_differ(a: tuple[str, bytes, int], b: tuple[str, bytes, int]) -> None:
    assert pseudonymize(*a) != pseudonymize(*b)


def test_short_keys_and_bad_versions_are_refused() -> None:
    with pytest.raises(WeakKey):
        pseudonymize("alice", b"short", 1)
    with pytest.raises(ValueError):
        pseudonymize("alice", K1, 0)
    with pytest.raises(WeakKey):
        KeyRing({"org": {1: b"short"}})


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("s1_" + "a" * 26, 1),
        ("s12_" + "b" * 26, 12),
        ("s1_abc", None),
        ("x1_" + "a" * 26, None),
        ("s01_" + "a" * 26, None),
        ("alice", None),
    ],
)
def test_key_version_of(text: str, version: int | None) -> None:
    assert key_version_of(text) == version


def test_rotation_changes_new_pseudonyms_and_keeps_old_ones_findable() -> None:
    ring = KeyRing({"org": {1: K1}})
    before = ring.pseudonymize("org", "alice")
    rotated = ring.rotate("org", K2)
    after = rotated.pseudonymize("org", "alice")
    assert rotated.current_version("org") == 2
    assert before != after and key_version_of(after) == 2
    assert rotated.candidates("org", "alice") == {1: before, 2: after}
    assert rotated.pseudonymize("org", "alice", version=1) == before
    assert ring.current_version("org") == 1  # the old ring is unchanged


def test_rotating_a_new_org_starts_at_version_one() -> None:
    ring = KeyRing().rotate("new-org", K1)
    assert ring.pseudonymize("new-org", "bob") == pseudonymize("bob", K1, 1)


def test_retire_drops_old_versions_but_never_the_current_one() -> None:
    ring = KeyRing({"org": {1: K1}}).rotate("org", K2)
    retired = ring.retire("org", 1)
    assert list(retired.candidates("org", "alice")) == [2]
    with pytest.raises(ValueError):
        retired.retire("org", 2)
    with pytest.raises(UnknownKeyVersion):
        retired.pseudonymize("org", "alice", version=1)


def test_unknown_org_and_version() -> None:
    ring = KeyRing({"org": {1: K1}})
    with pytest.raises(UnknownOrg):
        ring.pseudonymize("other", "alice")
    with pytest.raises(UnknownKeyVersion):
        ring.key("org", 3)


def test_key_ring_cannot_be_changed_through_its_mapping() -> None:
    ring = KeyRing({"org": {1: K1}})
    with pytest.raises(TypeError):
        ring.keys["org"][2] = K2  # type: ignore[index]
