"""The local stack's portal login: a generated password kept 0600, only its hash
in ClickHouse's configuration, grants exactly those of candor.portal.access."""

from __future__ import annotations

import hashlib
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

from pydantic import SecretStr

from candor.portal.access import PORTAL_ROLE, PORTAL_USER, grants
from candor.portal.local_access import (
    password_file,
    portal_config_fragment,
    portal_login,
    resolve_portal_password,
    write_portal_fragment,
)
from candor.settings import Settings, replace


def _settings(tmp_path: Path) -> Settings:
    return replace(
        Settings(),
        home=tmp_path / "home",
        clickhouse={"database": "candor_x"},
        portal={"clickhouse_password": SecretStr("")},
    )


def test_password_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    first = resolve_portal_password(s)
    assert len(first) >= 24
    assert stat.S_IMODE(password_file(s).stat().st_mode) == 0o600
    assert resolve_portal_password(s) == first  # kept, not regenerated
    s = replace(s, portal={"clickhouse_password": SecretStr("set-by-operator")})
    assert resolve_portal_password(s) == "set-by-operator"


def test_fragment_declares_the_role_with_its_grants_and_the_hash_only(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    path = write_portal_fragment(s, tmp_path / "config.d")
    password = password_file(s).read_text().strip()
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in text
    root = ET.fromstring(text)
    user = root.find(f"users/{PORTAL_USER}")
    assert user is not None
    assert user.findtext("password_sha256_hex") == hashlib.sha256(password.encode()).hexdigest()
    assert [q.text for q in user.findall("grants/query")] == [f"GRANT {PORTAL_ROLE}"]
    role = [q.text for q in root.findall(f"roles/{PORTAL_ROLE}/grants/query")]
    assert role == [f"GRANT {g}" for g in grants("candor_x")]
    assert not any("subject_keys" in (q or "") or "ALL" in (q or "") for q in role)


def test_fragment_is_pure_in_database_and_password() -> None:
    assert portal_config_fragment("a", "p") == portal_config_fragment("a", "p")
    assert "ON b.events" in portal_config_fragment("b", "p")


def test_the_child_portal_gets_the_password_by_file_not_argv(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    args, env = portal_login(s)
    assert args == ["--clickhouse-password-file", str(password_file(s))]
    assert env == {"CANDOR_PORTAL__CLICKHOUSE_USER": PORTAL_USER}
    s = replace(s, portal={"clickhouse_password": SecretStr("from-env")})
    args, env = portal_login(s)
    assert args == [] and env["CANDOR_PORTAL__CLICKHOUSE_PASSWORD"] == "from-env"
