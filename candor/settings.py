"""Candor's one settings object.

Built once (by the CLI or a test fixture) from `CANDOR_`-prefixed environment
variables, `__` for nesting (`CANDOR_KAFKA__BOOTSTRAP`), and passed down.
No other module reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseModel):
    """Where Kafka is and how Candor's topics are laid out."""

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        "", description="prepended to every Candor topic name (one cluster, several pipelines)")
    partitions: int = Field(12, ge=1, description="default partition count of Candor topics")
    replication_factor: int = Field(1, ge=1)
    client_id: str = "candor"

    def topic(self, name: str) -> str:
        """The real name of one of DESIGN.md's topics (`capture.events`, ...)."""
        return self.topic_prefix + name

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings shared by every Candor client."""
        return {"bootstrap.servers": self.bootstrap, "client.id": self.client_id}


class ClickHouseSettings(BaseModel):
    """Where ClickHouse is. `cluster` switches migrations to ON CLUSTER + Replicated engines."""

    url: str = "http://127.0.0.1:8123"
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "candor"
    cluster: str | None = None


class RetentionSettings(BaseModel):
    """How long data is kept, per place."""

    capture_events_hours: int = 72
    capture_clean_hours: int = 168
    dlq_hours: int = 336
    activity_hours: int = 24 * 30
    clickhouse_events_days: int = 90


class StreamSettings(BaseModel):
    """Stream worker knobs (durations in seconds)."""

    session_gap_s: float = 15 * 60
    session_max_s: float = 10 * 3600
    grace_s: float = 30
    minute_quiet_s: float = 90
    action_quiet_s: float = 2
    batch_max: int = 5000
    batch_within_s: float = 0.5
    timer_interval_s: float = 5
    dlq_max_ratio: float = 0.5
    dlq_max_consecutive: int = 1000
    # A worker whose assigned partitions have records waiting but that has not
    # processed a batch for this long stops with an error (for its supervisor
    # to restart it), instead of hanging on silently.
    stall_s: float = 300


class PrivacySettings(BaseModel):
    """Keys and access. `master_key` wraps every subject's data key (32 bytes as
    64 hex digits or base64); when unset, the local stack creates one in
    `$CANDOR_HOME/privacy/master.key` (see `master_key_bytes`): set it in production."""

    master_key: SecretStr | None = None
    key_reload_s: float = 5.0
    # Per org: when capture is allowed, enforced by the stream workers (events
    # outside are dropped, counted as outside_capture_hours), e.g.
    # CANDOR_PRIVACY__CAPTURE_HOURS='[{"org_id": "acme", "weekdays": ["mon","tue","wed",
    # "thu","fri"], "start": "08:00", "end": "19:00", "tz": "Europe/Paris"}]'.
    # An org without an entry may capture at any hour.
    capture_hours: list[dict[str, Any]] = Field(default_factory=list)
    analyst_password: SecretStr = SecretStr("candor-analyst-local")


class Settings(BaseSettings):
    """Every knob of a Candor process. Construct once; pass down."""

    model_config = SettingsConfigDict(
        env_prefix="CANDOR_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(REPO_ROOT / ".candor", description="local state directory")
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    retention: RetentionSettings = RetentionSettings()
    streams: StreamSettings = StreamSettings()
    privacy: PrivacySettings = PrivacySettings()
    prometheus_url: str = "http://127.0.0.1:9090"
    log_level: str = "INFO"


def load_settings() -> Settings:
    """Read the environment once. Flat shortcuts `CANDOR_KAFKA_BOOTSTRAP` and
    `CANDOR_CLICKHOUSE_URL` (used by the test fixtures and the README) override
    the nested fields."""
    import os  # the only place that reads the environment

    settings = Settings()
    if bootstrap := os.environ.get("CANDOR_KAFKA_BOOTSTRAP"):
        settings.kafka.bootstrap = bootstrap
    if url := os.environ.get("CANDOR_CLICKHOUSE_URL"):
        settings.clickhouse.url = url
    return settings


def master_key_bytes(settings: Settings) -> bytes:
    """The master key: from settings, else the local stack's key file (created
    with 0600 permissions on first use, shared by every process of this home)."""
    import secrets

    from privacy.wrapping import parse_master_key

    if settings.privacy.master_key is not None:
        return parse_master_key(settings.privacy.master_key.get_secret_value())
    path = settings.home / "privacy" / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return parse_master_key(path.read_text())


def child_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """`base` (a parent's environment) plus the variables that make a child
    `candor` process build these same settings (tests, benchmarks, the demo)."""
    env = dict(base)
    env.update({
        "CANDOR_HOME": str(settings.home),
        "CANDOR_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "CANDOR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CANDOR_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "CANDOR_CLICKHOUSE_URL": settings.clickhouse.url,
        "CANDOR_CLICKHOUSE__DATABASE": settings.clickhouse.database,
        "CANDOR_CLICKHOUSE__USER": settings.clickhouse.user,
        "CANDOR_CLICKHOUSE__PASSWORD": settings.clickhouse.password.get_secret_value(),
    })
    if settings.privacy.master_key is not None:
        env["CANDOR_PRIVACY__MASTER_KEY"] = settings.privacy.master_key.get_secret_value()
    for name, value in settings.streams.model_dump().items():
        env[f"CANDOR_STREAMS__{name.upper()}"] = str(value)
    return env
