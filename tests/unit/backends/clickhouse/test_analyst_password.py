"""The analyst password: never the constant outside the local stack; the SQL
that applies it sets it every time (a rotation takes), hashed and salted."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from backends.clickhouse.analyst_access import (
    ANALYST_USER,
    LOCAL_ANALYST_PASSWORD,
    EmptyPasswordFile,
    access_statements,
    resolve_password,
    users_config_fragment,
)
from candor.settings import Settings, replace


def _settings(home: Path, local: bool) -> Settings:
    return replace(Settings(), home=home, local_stack=local, privacy={"analyst_password": None})


def test_outside_the_local_stack_a_password_is_generated_and_kept(tmp_path: Path) -> None:
    s = _settings(tmp_path, local=False)
    first = resolve_password(s)
    assert first.generated and first.password != LOCAL_ANALYST_PASSWORD
    path = tmp_path / "privacy" / "analyst.password"
    assert first.where == str(path) and path.read_text().strip() == first.password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = resolve_password(s)
    assert again.password == first.password and not again.generated
    rotated = resolve_password(s, rotate=True)
    assert rotated.generated and rotated.password != first.password
    assert path.read_text().strip() == rotated.password


def test_sources_in_order(tmp_path: Path) -> None:
    s = _settings(tmp_path, local=True)
    assert resolve_password(s).password == LOCAL_ANALYST_PASSWORD  # local stack only
    s = replace(s, privacy={"analyst_password": SecretStr("from-settings")})
    assert resolve_password(s).password == "from-settings"
    given = tmp_path / "pw"
    given.write_text("from-file\n")
    assert resolve_password(s, given).password == "from-file"
    given.write_text("  \n")
    with pytest.raises(EmptyPasswordFile):
        resolve_password(s, given)


def test_sql_sets_the_password_every_time_salted_with_profile_quota_hosts() -> None:
    s = replace(Settings(), privacy={"analyst_networks": ["10.0.0.0/8"]})
    statements = access_statements(s, "s3cret", salt="abcd")
    text = "\n".join(statements)
    assert "s3cret" not in text
    digest = hashlib.sha256(b"s3creta" + b"bcd").hexdigest()
    alter = [x for x in statements if x.startswith(f"ALTER USER {ANALYST_USER} IDENTIFIED")]
    assert len(alter) == 1 and f"BY '{digest}' SALT 'abcd'" in alter[0]
    assert "HOST IP '10.0.0.0/8'" in alter[0] and "SETTINGS PROFILE" in alter[0]
    assert re.search(r"readonly = 2 CONST", text)
    assert re.search(r"CREATE QUOTA OR REPLACE \w+ FOR INTERVAL 1 hour MAX queries = 1000", text)


def test_config_fragment_holds_only_the_hash() -> None:
    s = Settings()
    xml = users_config_fragment(s, "s3cret")
    assert "s3cret" not in xml
    assert hashlib.sha256(b"s3cret").hexdigest() in xml
    assert "<ip>127.0.0.1/32</ip><ip>::1/128</ip>" in xml
