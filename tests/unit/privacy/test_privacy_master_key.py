"""The master key: never world-readable for an instant, never invented outside
the local stack."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from candor.settings import MasterKeyRequired, Settings, is_local_stack, master_key_bytes, replace


def _settings(
    home: Path, bootstrap: str = "127.0.0.1:9092", url: str = "http://127.0.0.1:8123"
) -> Settings:
    return replace(
        Settings(),
        home=home,
        kafka={"bootstrap": bootstrap},
        clickhouse={"url": url},
        privacy={"master_key": None},
    )


def test_local_key_file_is_born_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a permissive umask and chmod doing nothing, the file is still 0600:
    its mode came with its creation, not from a later chmod."""
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)
    old = os.umask(0o022)
    try:
        key = master_key_bytes(_settings(tmp_path))
    finally:
        os.umask(old)
    path = tmp_path / "privacy" / "master.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp left
    assert master_key_bytes(_settings(tmp_path)) == key  # the same key on every use


def test_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "privacy" / "master.key"
    path.parent.mkdir(parents=True)
    path.write_text(bytes(range(32)).hex())
    assert master_key_bytes(_settings(tmp_path)) == bytes(range(32))


@pytest.mark.parametrize(
    ("bootstrap", "url"),
    [
        ("kafka-0.prod:9092", "http://127.0.0.1:8123"),
        ("127.0.0.1:9092", "https://clickhouse.prod:8443"),
        ("127.0.0.1:9092,10.0.0.7:9092", "http://127.0.0.1:8123"),
    ],
)
def test_missing_key_outside_the_local_stack_is_an_error(
    tmp_path: Path, bootstrap: str, url: str
) -> None:
    s = _settings(tmp_path, bootstrap, url)
    assert not is_local_stack(s)
    with pytest.raises(MasterKeyRequired, match="CANDOR_PRIVACY__MASTER_KEY"):
        master_key_bytes(s)
    assert not (tmp_path / "privacy").exists()  # nothing generated next to the data


def test_explicit_production_flag_wins(tmp_path: Path) -> None:
    s = replace(_settings(tmp_path), local_stack=False)
    with pytest.raises(MasterKeyRequired):
        master_key_bytes(s)
    s = replace(s, privacy={"master_key": SecretStr(bytes(range(32)).hex())})
    assert master_key_bytes(s) == bytes(range(32))


def test_loopback_names_are_the_local_stack(tmp_path: Path) -> None:
    assert is_local_stack(_settings(tmp_path, "localhost:9092,[::1]:9093", "http://localhost:8123"))
