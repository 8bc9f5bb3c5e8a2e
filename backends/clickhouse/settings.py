"""The `clickhouse` settings section (``CANDOR_CLICKHOUSE__*``), composed into
`candor.settings.Settings`."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ClickHouseSettings(BaseModel):
    """Where ClickHouse is. `cluster` switches migrations to ON CLUSTER + Replicated engines."""

    model_config = ConfigDict(frozen=True)

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


class HasClickHouse(Protocol):
    """Settings that carry a `clickhouse` section (the composed `candor.settings.Settings`)."""

    @property
    def clickhouse(self) -> ClickHouseSettings: ...
