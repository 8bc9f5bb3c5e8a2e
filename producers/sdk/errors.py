"""Typed errors raised by the publishing side of Candor.

Every failure a capture client can act on has its own class, so callers
branch on the type (back off, alert, give up) instead of parsing messages.
"""

from __future__ import annotations


class ProducerError(Exception):
    """Base of every error raised by `producers`."""


class SpoolError(ProducerError):
    """Base of the disk spool's errors."""


class SpoolFull(SpoolError):
    """An append would take the spool over its `max_bytes` bound.

    Nothing of the rejected batch was written. `needed` is the size of the
    batch on disk, `available` what was left under the bound.
    """

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"spool full: batch needs {needed} bytes, {available} available")
        self.needed = needed
        self.available = available


class SpoolLocked(SpoolError):
    """Another open `Spool` (in this or another process) holds the directory."""


class SpoolCorrupt(SpoolError):
    """Spool state that no crash can produce (a damaged cursor file, a frame
    that failed its checksum after it was validated on open)."""


class SequenceError(ProducerError):
    """The device sequence file is unreadable or damaged."""


class EnvelopeError(ProducerError, ValueError):
    """A capture call lacked what an envelope needs (payload type, app name)."""


class ClientClosed(ProducerError):
    """A `CaptureClient` was used after `close`."""
