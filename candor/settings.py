"""Candor's one settings object, composed from the sections each layer owns.

Built once (by the CLI or a test fixture) from `CANDOR_`-prefixed environment
variables, `__` for nesting (`CANDOR_KAFKA__BOOTSTRAP`), and passed down.
No other module reads `os.environ`. `Settings` and every section are frozen:
a caller that needs other values (a test's own topic prefix, a CLI option)
takes a validated copy with `replace`, and every holder of the original
keeps seeing what it was built with.

The sections live beside the code that reads them: `kafka` and `retention` in
`backends.kafka.settings`, `clickhouse` in `backends.clickhouse.settings`,
`frames` in `backends.frame_store`, `streams` in `streams.settings`, `privacy`
in `privacy.settings`; `portal` is the composition root's own. Below `candor/`
nothing imports this module: a stage names the sections it reads as a
`Protocol` (e.g. `streams.settings.WorkerSettings`) that `Settings` satisfies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backends.clickhouse.settings import ClickHouseSettings
from backends.frame_store import FrameStoreSettings
from backends.kafka.settings import PRODUCTION_REPLICATION, KafkaSettings, RetentionSettings
from privacy.keystore import KeyStoreError
from privacy.settings import PrivacySettings
from streams.settings import StreamSettings

__all__ = [
    "REPO_ROOT",
    "ClickHouseSettings",
    "FrameStoreSettings",
    "KafkaSettings",
    "MasterKeyRequired",
    "PortalSettings",
    "PrivacySettings",
    "RetentionSettings",
    "Settings",
    "StreamSettings",
    "child_env",
    "is_local_stack",
    "load_settings",
    "master_key_bytes",
    "replace",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


class PortalSettings(BaseModel):
    """The person's portal (`candor portal serve`). `public_url` is what invite
    links start with; an https URL (or `secure_cookies`) makes the session
    cookie Secure. `clickhouse_user`/`clickhouse_password` name the portal's
    least-privilege reader (candor/portal/access.py); when unset the portal
    reads with the `clickhouse` section's user."""

    model_config = ConfigDict(frozen=True)

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
        env_prefix="CANDOR_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    home: Path = Field(REPO_ROOT / ".candor", description="local state directory")
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    retention: RetentionSettings = RetentionSettings()
    streams: StreamSettings = StreamSettings()
    privacy: PrivacySettings = PrivacySettings()
    portal: PortalSettings = PortalSettings()
    frames: FrameStoreSettings = FrameStoreSettings()  # backends/frame_store.py
    prometheus_url: str = "http://127.0.0.1:9090"
    metrics_host: str = Field(
        "127.0.0.1",
        description="address the /metrics servers of workers, sinks and the "
        "canary bind: loopback on one machine, the pod's address in Kubernetes (the Helm "
        "chart sets it from status.podIP) so that Prometheus and the kubelet reach it",
    )
    log_level: str = "INFO"
    # Whether this is the one-machine local stack, where a missing master key is
    # generated and the analyst login may keep its documented password. None:
    # true when Kafka and ClickHouse are both on loopback addresses.
    local_stack: bool | None = None

    def on_local_stack(self) -> bool:
        """`is_local_stack`: what a layer's settings protocol asks for."""
        return is_local_stack(self)

    def master_key(self) -> bytes:
        """The master key (`master_key_bytes`): what a stage's settings protocol
        asks for instead of importing this module."""
        return master_key_bytes(self)

    @model_validator(mode="after")
    def _topic_durability(self) -> Settings:
        """An unset replication factor is 3 (min ISR 2), or 1 (min ISR 1) on the
        one-node local stack, so a topic created there is writable."""
        if self.kafka.replication_factor is None:
            factor = 1 if is_local_stack(self) else PRODUCTION_REPLICATION
            # Part of building the (frozen) object: the only write past validation.
            object.__setattr__(
                self, "kafka", self.kafka.model_copy(update={"replication_factor": factor})
            )
        return self


def load_settings() -> Settings:
    """Read the environment once. Flat shortcuts `CANDOR_KAFKA_BOOTSTRAP` and
    `CANDOR_CLICKHOUSE_URL` (used by the test fixtures and the README) override
    the nested fields."""
    import os  # the only place that reads the environment

    settings = Settings()
    # The unset replication factor's default depends on where the servers are:
    # decided again once the shortcuts have said so.
    factor = (
        {} if "CANDOR_KAFKA__REPLICATION_FACTOR" in os.environ else {"replication_factor": None}
    )
    if bootstrap := os.environ.get("CANDOR_KAFKA_BOOTSTRAP"):
        settings = replace(settings, kafka={"bootstrap": bootstrap, **factor})
    if url := os.environ.get("CANDOR_CLICKHOUSE_URL"):
        settings = replace(settings, clickhouse={"url": url}, kafka=dict(factor))
    return settings


def replace(settings: Settings, /, **changes: object) -> Settings:
    """A validated copy of `settings` with `changes`; `settings` is unchanged.

    A top-level field takes its new value (``home=Path(...)``); a section takes
    a mapping of the fields to change in it, the others kept
    (``kafka={"topic_prefix": "t-", "partitions": 2}``), or a whole section
    object. The copy is validated as a whole (the field constraints, the
    replication default when ``kafka.replication_factor`` is set to None) and
    reads no environment. Raises `TypeError` for a name `Settings` or the
    section does not have (a typo would otherwise be dropped silently) and
    pydantic's `ValidationError` (a `ValueError`) for a value that fails
    validation.
    """
    fields = type(settings).model_fields
    data: dict[str, object] = {name: getattr(settings, name) for name in fields}
    for name, change in changes.items():
        if name not in fields:
            raise TypeError(f"Settings has no field {name!r}")
        current = data[name]
        if isinstance(current, BaseModel) and isinstance(change, Mapping):
            section = type(current).model_fields
            unknown = sorted(set(change) - set(section))
            if unknown:
                raise TypeError(f"settings section {name!r} has no field(s) {unknown}")
            values = {field: getattr(current, field) for field in section}
            values.update(change)
            data[name] = type(current).model_validate(values)
        else:
            data[name] = change
    return type(settings).model_validate(data)


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
            "--master-key-file; only the local stack generates one"
        )
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
    env.update(
        {
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
        }
    )
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
