"""The `privacy` settings section (``CANDOR_PRIVACY__*``), composed into
`candor.settings.Settings`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class PrivacySettings(BaseModel):
    """Keys and access. `master_key` wraps every subject's data key (32 bytes as
    64 hex digits or base64); when unset, the local stack creates one in
    `$CANDOR_HOME/privacy/master.key` (see `candor.settings.master_key_bytes`):
    set it in production."""

    model_config = ConfigDict(frozen=True)

    master_key: SecretStr | None = None
    key_reload_s: float = 5.0
    # Per org: when capture is allowed, enforced by the stream workers (events
    # outside are dropped, counted as outside_capture_hours), e.g.
    # CANDOR_PRIVACY__CAPTURE_HOURS='[{"org_id": "acme", "weekdays": ["mon","tue","wed",
    # "thu","fri"], "start": "08:00", "end": "19:00", "tz": "Europe/Paris"}]'.
    # An org without an entry may capture at any hour.
    capture_hours: list[dict[str, Any]] = Field(default_factory=list)
    # The analyst login's password (`candor analyst-access`). Unset: the command
    # takes --password-file or generates one; only the local stack falls back to
    # its documented password.
    analyst_password: SecretStr | None = None
    # Where the analyst login may connect from (ClickHouse HOST IP / <networks>).
    analyst_networks: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # The analyst's read-only settings profile and hourly quota.
    analyst_max_execution_s: int = Field(60, ge=1)
    analyst_max_result_rows: int = Field(1_000_000, ge=1)
    analyst_max_memory_bytes: int = Field(4 * 1024**3, ge=1)
    analyst_queries_per_hour: int = Field(1000, ge=1)
    analyst_read_rows_per_hour: int = Field(10_000_000_000, ge=1)
