"""What the HTTP gateway takes from the composed settings.

`GatewaySettings` names the sections a gateway process reads, so this package
never imports `candor`; `candor.settings.Settings` satisfies it. The gateway's
own knobs are its `GatewayConfig` (command-line options) and the `frames`
section (`backends.frame_store.FrameStoreSettings`: ``gateway``,
``ocr_workers``, ``max_frame_bytes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from backends.clickhouse.settings import ClickHouseSettings
from backends.frame_store import FrameStoreSettings
from backends.kafka.settings import KafkaSettings
from privacy.settings import PrivacySettings


class GatewaySettings(Protocol):
    """The sections a gateway reads (`candor.settings.Settings` has them all)."""

    @property
    def home(self) -> Path: ...
    @property
    def kafka(self) -> KafkaSettings: ...
    @property
    def clickhouse(self) -> ClickHouseSettings: ...
    @property
    def privacy(self) -> PrivacySettings: ...
    @property
    def frames(self) -> FrameStoreSettings: ...

    def master_key(self) -> bytes:
        """The master key wrapping subjects' data keys; raises `KeyStoreError`."""
        ...
