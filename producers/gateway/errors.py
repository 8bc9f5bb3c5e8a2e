"""Typed refusals of the HTTP gateway: each maps to one HTTP status and a reason.

The handler turns any `GatewayRefusal` into ``{"error": reason, "detail": ...}``
with its `status`; the pure modules raise them and never build responses.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayRefusal(Exception):
    """A request the gateway will not take as a whole. `reason` is a stable
    snake_case label (also a metric label); `detail` is for humans."""

    status: ClassVar[int] = 400

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BadRequest(GatewayRefusal):
    """The body cannot be read as a batch at all (bad JSON, bad framing, too many events)."""

    status: ClassVar[int] = 400


class Unauthorized(GatewayRefusal):
    """No, an unknown or an expired bearer token."""

    status: ClassVar[int] = 401


class Forbidden(GatewayRefusal):
    """The token is valid but the batch claims another device, subject or org."""

    status: ClassVar[int] = 403


class TooLarge(GatewayRefusal):
    """The body is over the size limit."""

    status: ClassVar[int] = 413


class UnsupportedMediaType(GatewayRefusal):
    """A Content-Type the gateway does not read."""

    status: ClassVar[int] = 415


class RateLimited(GatewayRefusal):
    """The device is over its event rate; retry after `retry_after_s`."""

    status: ClassVar[int] = 429

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("rate_limited", f"retry after {retry_after_s:.3f} s")
        self.retry_after_s = retry_after_s


class Unavailable(GatewayRefusal):
    """Kafka did not acknowledge the batch in time; nothing was promised, retry."""

    status: ClassVar[int] = 503

    def __init__(self, reason: str, detail: str, retry_after_s: float = 1.0) -> None:
        super().__init__(reason, detail)
        self.retry_after_s = retry_after_s
