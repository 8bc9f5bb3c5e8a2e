"""Candor's one settings object.

Built once (by the CLI or a test fixture) from `CANDOR_`-prefixed environment
variables, `__` for nesting (`CANDOR_KAFKA__BOOTSTRAP`), and passed down.
No other module reads `os.environ`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from privacy.keystore import KeyStoreError
from sinks.frame_store import FrameStoreSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


PRODUCTION_REPLICATION = 3
PRODUCTION_MIN_INSYNC = 2


class KafkaSettings(BaseModel):
    """Where Kafka is and how Candor's topics are laid out."""

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        "", description="prepended to every Candor topic name (one cluster, several pipelines)")
    partitions: int = Field(12, ge=1, description="default partition count of Candor topics")
    replication_factor: int | None = Field(
        None, ge=1, description="replicas of each Candor topic (and the workers' changelogs); "
        "unset: 3, or 1 on the local stack (`Settings` fills it in)")
    min_insync_replicas: int | None = Field(
        None, ge=1, description="`min.insync.replicas` of each Candor topic: acks=all writes "
        "fail below it; unset: 2, or 1 when the replication factor is 1")
    client_id: str = "candor"

    def replicas(self) -> int:
        """The replication factor of new topics (production default 3 when unset)."""
        return self.replication_factor or PRODUCTION_REPLICATION

    def min_insync(self) -> int:
        """`min.insync.replicas` of new topics: as set, else 2 (1 with one replica),
        never above the replication factor."""
        if self.min_insync_replicas is not None:
            return min(self.min_insync_replicas, self.replicas())
        return 1 if self.replicas() == 1 else PRODUCTION_MIN_INSYNC

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
    # With `cluster` set: False keeps each table's own engine for its shard-local table
    # (no ZooKeeper/Keeper: the chdb engine, or shards of one replica each).
    replicated: bool = True
    # With `cluster` set, servers without distributed DDL (no Keeper; the chdb engine)
    # get each migration applied to every one of these URLs, without ON CLUSTER.
    # Empty: one server, and statements carry ON CLUSTER.
    shard_urls: list[str] = Field(default_factory=list)


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


class PortalSettings(BaseModel):
    """The person's portal (`candor portal serve`). `public_url` is what invite
    links start with; an https URL (or `secure_cookies`) makes the session
    cookie Secure. `clickhouse_user`/`clickhouse_password` name the portal's
    least-privilege reader (candor/portal/access.py); when unset the portal
    reads with the `clickhouse` section's user."""

    host: str = "127.0.0.1"
    port: int = 8090
    public_url: str = "http://127.0.0.1:8090"
    secure_cookies: bool = False
    invite_ttl_s: float = 7 * 24 * 3600
    session_ttl_s: float = 3600
    signin_per_minute: int = 10
    downloads_per_hour: int = 10
    erase_settle_s: float = 5.0
    clickhouse_user: str | None = None
    clickhouse_password: SecretStr = SecretStr("")


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
    portal: PortalSettings = PortalSettings()
    frames: FrameStoreSettings = FrameStoreSettings()  # sinks/frame_store.py
    prometheus_url: str = "http://127.0.0.1:9090"
    metrics_host: str = Field(
        "127.0.0.1", description="address the /metrics servers of workers, sinks and the "
        "canary bind: loopback on one machine, the pod's address in Kubernetes (the Helm "
        "chart sets it from status.podIP) so that Prometheus and the kubelet reach it")
    log_level: str = "INFO"
    # Whether this is the one-machine local stack, where a missing master key is
    # generated and the analyst login may keep its documented password. None:
    # true when Kafka and ClickHouse are both on loopback addresses.
    local_stack: bool | None = None

    @model_validator(mode="after")
    def _topic_durability(self) -> Settings:
        """An unset replication factor is 3 (min ISR 2), or 1 (min ISR 1) on the
        one-node local stack, so a topic created there is writable."""
        if self.kafka.replication_factor is None:
            self.kafka.replication_factor = 1 if is_local_stack(self) else PRODUCTION_REPLICATION
        return self


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


def is_local_stack(settings: Settings) -> bool:
    """`settings.local_stack` when set, else whether every Kafka bootstrap server
    and the ClickHouse URL are on loopback addresses."""
    if settings.local_stack is not None:
        return settings.local_stack
    import ipaddress
    from urllib.parse import urlsplit

    def loopback(host: str | None) -> bool:
        host = (host or "").strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    kafka = [urlsplit(f"//{b.strip()}").hostname for b in settings.kafka.bootstrap.split(",")]
    return all(loopback(h) for h in kafka) and loopback(urlsplit(settings.clickhouse.url).hostname)


class MasterKeyRequired(KeyStoreError):
    """Outside the local stack, no master key is configured: a process must not
    invent one next to its data (the key store it wraps would be unreadable
    to every other process)."""


def master_key_bytes(settings: Settings) -> bytes:
    """The master key: from settings; on the local stack only, else from the
    local key file, created on first use with mode 0600 from the start
    (``os.open`` with the mode, then a no-clobber link into place, so a
    concurrent first use keeps one key). Raises :class:`MasterKeyRequired`
    outside the local stack when ``privacy.master_key`` is unset."""
    import os
    import secrets

    from privacy.wrapping import parse_master_key

    if settings.privacy.master_key is not None:
        return parse_master_key(settings.privacy.master_key.get_secret_value())
    if not is_local_stack(settings):
        raise MasterKeyRequired(
            "no master key: set CANDOR_PRIVACY__MASTER_KEY (64 hex digits) or pass "
            "--master-key-file; only the local stack generates one")
    path = settings.home / "privacy" / "master.key"
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".master.key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces a key another process wrote first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
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
        "CANDOR_KAFKA__REPLICATION_FACTOR": str(settings.kafka.replicas()),
        "CANDOR_KAFKA__MIN_INSYNC_REPLICAS": str(settings.kafka.min_insync()),
    })
    if settings.clickhouse.cluster:
        env["CANDOR_CLICKHOUSE__CLUSTER"] = settings.clickhouse.cluster
        env["CANDOR_CLICKHOUSE__REPLICATED"] = str(settings.clickhouse.replicated).lower()
        env["CANDOR_CLICKHOUSE__SHARD_URLS"] = json.dumps(settings.clickhouse.shard_urls)
    if settings.privacy.master_key is not None:
        env["CANDOR_PRIVACY__MASTER_KEY"] = settings.privacy.master_key.get_secret_value()
    if settings.local_stack is not None:
        env["CANDOR_LOCAL_STACK"] = str(settings.local_stack).lower()
    for name, value in settings.streams.model_dump().items():
        env[f"CANDOR_STREAMS__{name.upper()}"] = str(value)
    return env
