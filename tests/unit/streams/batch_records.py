"""DeviceBatch records for the route step's tests: the time they are routed at
and a batch written without the domain checks, so bad events can be in it."""

from __future__ import annotations

from typing import Any

from schemas.batch import DEVICE_BATCH, batch_header
from schemas.codec import encode
from tests.unit.privacy.privacy_events import TUESDAY_10_UTC

NOW = TUESDAY_10_UTC + 60_000_000


def as_batch(evs: list[dict[str, Any]], **header: Any) -> bytes:
    """A DeviceBatch of ``evs`` written without domain checks (bad ones included)."""
    datum = {**batch_header(evs, batch_id="batch-1", sent_ts=NOW), **header, "events": evs}
    return encode(DEVICE_BATCH, datum, check_domains=False)
