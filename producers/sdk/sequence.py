"""The per-device sequence number, strictly increasing across restarts.

Choice: block reservation in a small file beside the spool. Before handing out
numbers the sequence persists a high-water mark `reserved` (atomic rename,
fsync) `block` numbers ahead; a restarted SDK starts after the persisted mark.
So every number handed out is larger than every number handed out before any
restart or crash, at the cost of one small write per `block` events and a
gap of up to `block` numbers after a restart. Consumers must treat `seq` as
ordered, never as dense.

(The alternative, a time-based base `ts_micros`, needs no file but breaks
when the device clock steps backwards, which device clocks do.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from producers.sdk.errors import SequenceError

DEFAULT_BLOCK = 1024


class DeviceSequence:
    """Hands out 1, 2, 3, ... and continues above every earlier number after
    a restart. Not thread-safe. Raises `SequenceError` if the file is damaged."""

    def __init__(self, path: Path, *, block: int = DEFAULT_BLOCK, fsync: bool = True) -> None:
        if block < 1:
            raise ValueError("block must be >= 1")
        self.path = path
        self.block = block
        self.fsync = fsync
        self._reserved = self._read()
        self._last = self._reserved

    @property
    def last(self) -> int:
        """The last number handed out (or the restart base before the first)."""
        return self._last

    def next(self) -> int:
        """The next number; persists a new reservation every `block` calls (blocks on fsync)."""
        value = self._last + 1
        if value > self._reserved:
            self._persist(self._last + self.block)
        self._last = value
        return value

    def _read(self) -> int:
        if not self.path.exists():
            return 0
        try:
            reserved = int(json.loads(self.path.read_text())["reserved"])
        except (ValueError, KeyError, TypeError) as err:
            raise SequenceError(f"unreadable sequence file {self.path}: {err}") from err
        if reserved < 0:
            raise SequenceError(f"negative reservation in {self.path}")
        return reserved

    def _persist(self, reserved: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"reserved": reserved}).encode())
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._reserved = reserved
