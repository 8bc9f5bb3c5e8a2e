"""Builds capture events in the contract's in-memory form (see schemas.codec).

An envelope is the dict `schemas.codec.encode_event` takes: identity
(org, subject, device), a fresh uuid4 `event_id`, the device's next `seq`
(`producers.sdk.sequence`, strictly increasing across restarts), event time `ts`
in microseconds, the app context and the payload. `redactions` starts empty
and `consent_version` unset: the stream fills both.

Field-level validation (types, enum values) is the codec's job; this module
only refuses envelopes that could not be routed at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from producers.sdk.errors import EnvelopeError
from producers.sdk.sequence import DeviceSequence
from schemas.clock import now_micros

Event = dict[str, Any]

_APP_FIELDS = ("app_name", "window_title", "url_host")


def new_event_id() -> str:
    """A random uuid4 string."""
    return str(uuid.uuid4())


def normalize_app(app: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's app record: `app_name` required, the optional fields None
    when absent. Raises `EnvelopeError` without an `app_name` or with unknown keys."""
    if not isinstance(app.get("app_name"), str) or not app["app_name"]:
        raise EnvelopeError("app context needs a non-empty app_name")
    unknown = set(app) - set(_APP_FIELDS)
    if unknown:
        raise EnvelopeError(f"unknown app fields: {sorted(unknown)}")
    return {name: app.get(name) for name in _APP_FIELDS}


class EnvelopeBuilder:
    """Stamps payloads from one device into envelopes. Not thread-safe."""

    def __init__(
        self,
        *,
        org_id: str,
        subject_id: str,
        device_id: str,
        sequence: DeviceSequence,
        clock: Callable[[], int] = now_micros,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        for name, value in (
            ("org_id", org_id),
            ("subject_id", subject_id),
            ("device_id", device_id),
        ):
            if not value:
                raise EnvelopeError(f"{name} must be non-empty")
        self.org_id = org_id
        self.subject_id = subject_id
        self.device_id = device_id
        self._sequence = sequence
        self._clock = clock
        self._new_id = new_id

    def build(
        self,
        payload: Mapping[str, Any],
        app: Mapping[str, Any],
        ts: int | None = None,
        received_ts: int | None = None,
    ) -> Event:
        """A new envelope for `payload` seen in `app` at `ts` (now if None).

        Consumes one sequence number. Raises `EnvelopeError` when the payload
        has no `type` or the app no `app_name`.
        """
        if not isinstance(payload.get("type"), str) or not payload["type"]:
            raise EnvelopeError("payload needs a 'type' naming its record")
        return {
            "event_id": self._new_id(),
            "org_id": self.org_id,
            "subject_id": self.subject_id,
            "device_id": self.device_id,
            "seq": self._sequence.next(),
            "ts": self._clock() if ts is None else int(ts),
            "received_ts": received_ts,
            "app": normalize_app(app),
            "payload": dict(payload),
            "redactions": [],
            "consent_version": None,
        }
