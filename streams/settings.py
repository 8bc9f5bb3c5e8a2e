"""The `streams` settings section (``CANDOR_STREAMS__*``) and what a stream
worker takes from the composed settings.

`StreamSettings` is composed into `candor.settings.Settings`; `WorkerSettings`
names the sections the worker reads, so this package never imports `candor`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from backends.clickhouse.settings import ClickHouseSettings
from backends.kafka.settings import KafkaSettings
from privacy.settings import PrivacySettings


class StreamSettings(BaseModel):
    """Stream worker knobs (durations in seconds)."""

    model_config = ConfigDict(frozen=True)

    session_gap_s: float = 15 * 60
    session_max_s: float = 10 * 3600
    grace_s: float = 30
    minute_quiet_s: float = 90
    action_quiet_s: float = 2
    batch_max: int = 5000
    # How long the agent gathers records before it routes them (unless batch_max
    # come first). Every record waits for it: at 5,000 events/s bench/e2e.py
    # measured capture -> capture.clean p50 1.38 s with 0.5 and 0.84 s with 0.2,
    # the worker far from busy either way; flat out, batches fill by size.
    batch_within_s: float = 0.2
    timer_interval_s: float = 5
    dlq_max_ratio: float = 0.5
    dlq_max_consecutive: int = 1000
    # A worker whose assigned partitions have records waiting but that has not
    # processed a batch for this long stops with an error (for its supervisor
    # to restart it), instead of hanging on silently.
    stall_s: float = 300


class WorkerSettings(Protocol):
    """The sections a stream worker reads (`candor.settings.Settings` has them all)."""

    @property
    def home(self) -> Path: ...
    @property
    def kafka(self) -> KafkaSettings: ...
    @property
    def clickhouse(self) -> ClickHouseSettings: ...
    @property
    def streams(self) -> StreamSettings: ...
    @property
    def privacy(self) -> PrivacySettings: ...
    @property
    def metrics_host(self) -> str:
        """The address the worker's /metrics server binds."""
        ...

    def master_key(self) -> bytes:
        """The master key wrapping subjects' data keys; raises `KeyStoreError`."""
        ...
