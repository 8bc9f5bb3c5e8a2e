"""What the sinks take from the composed settings.

The sections themselves belong to the adapters (`backends.kafka.settings`,
`backends.clickhouse.settings`); `SinkSettings` names the ones a sink reads, so
this package never imports `candor`. `candor.settings.Settings` satisfies it.
"""

from __future__ import annotations

from typing import Protocol

from backends.clickhouse.settings import ClickHouseSettings
from backends.kafka.settings import KafkaSettings, RetentionSettings


class SinkSettings(Protocol):
    """The sections a sink, a migration, a query or an export reads."""

    @property
    def kafka(self) -> KafkaSettings: ...
    @property
    def clickhouse(self) -> ClickHouseSettings: ...
    @property
    def retention(self) -> RetentionSettings: ...
