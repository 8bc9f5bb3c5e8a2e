"""The machines' yardstick decoder: stock fastavro on today's single-event records.

Issue 12 measures the worker against a bare consumer that only decodes (and,
end to end, one that decodes and inserts) the per-event CaptureEvent records
of before device batches. That consumer is what anyone would write with the
stock library: check the record's single-object header and hand the body to
fastavro's ``schemaless_reader``, asking for the payload's record name (the
event type: what a consumer has to know of an event), which it then stores
the way Candor's datum does (a ``"type"`` key). It does not use Candor's own decoder
(`schemas.codec`), so that making Candor's decoder faster (schemas.reader)
speeds up the worker without moving the yardstick the worker is held to.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader

from schemas.codec import CAPTURE_EVENT
from schemas.registry import default_registry


def stock_decoder() -> Callable[[bytes], dict[str, Any]]:
    """A function decoding one single-event record (the current CaptureEvent
    version) with fastavro alone; raises ValueError on another header."""
    version = default_registry().latest(CAPTURE_EVENT)
    header, schema = version.single_object_header, version.parsed
    skip = len(header)

    def decode(value: bytes) -> dict[str, Any]:
        if not value.startswith(header):
            raise ValueError("not a single-object CaptureEvent of the current version")
        stream = BytesIO(value)
        stream.seek(skip)
        datum: dict[str, Any] = schemaless_reader(  # type: ignore[assignment]
            stream, schema, None, return_record_name=True
        )
        name, payload = datum["payload"]
        payload["type"] = name.rpartition(".")[2]
        datum["payload"] = payload
        return datum

    return decode
