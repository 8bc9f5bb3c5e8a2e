"""The gateway's frame route composed from settings (``candor gateway`` with
``frames.gateway`` on).

`producers.gateway.frames.FrameRoutes` takes what it needs of other layers as
protocols; this composition root supplies them: the frame store
(`backends.frame_store`), the consent registry read from Kafka
(`backends.kafka.consent_view`), the key store read from ClickHouse
(`backends.clickhouse.key_store`) and the OCR redaction pool.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from backends.clickhouse.key_store import KeyView
from candor.settings import Settings, master_key_bytes
from producers.gateway.auth import TokenFile
from producers.gateway.frames import FrameRoutes, redaction_pool

__all__ = ["open_frame_routes"]


def open_frame_routes(
    settings: Settings, tokens: TokenFile, registry: CollectorRegistry
) -> FrameRoutes:
    """The frame route of a gateway run from ``settings``: the configured frame
    store, the consent registry read from Kafka (kept current by a thread), the
    key store read from ClickHouse (reloaded by a thread), a redaction pool of
    ``settings.frames.ocr_workers`` processes and the per-token frame rate.
    Blocks until the registry and the keys are loaded; raises their errors."""
    from backends.clickhouse.connection import connect
    from backends.frame_store import open_frame_store
    from backends.kafka.consent_view import ConsentView

    store = open_frame_store(settings.frames, settings.home)
    consent = ConsentView(
        dict(settings.kafka.client_config()), settings.kafka.topic("consent.policies")
    )
    consent.start(60)
    keys = KeyView(
        lambda: connect(settings),
        master_key_bytes(settings),
        interval=settings.privacy.key_reload_s,
    )
    keys.start()

    def close() -> None:
        consent.stop()
        keys.stop()

    f = settings.frames
    return FrameRoutes(
        tokens,
        store,
        consent,
        keys,
        redaction_pool(f.ocr_workers),
        registry,
        max_frame_bytes=f.max_frame_bytes,
        frames_per_token_s=f.frames_per_token_s,
        frame_burst_per_token=f.frame_burst_per_token,
        on_close=close,
    )
