"""A bounded, crash-safe, append-only disk spool of Kafka records.

The capture SDK puts events here while the broker is unreachable and replays
them, in order, once it is back. The spool is a directory::

    segment-000000001.log   append-only frames, oldest first
    segment-000000002.log
    cursor                  JSON {"segment", "offset", "ordinal"}: everything before it is acked
    lock                    flock'ed while a `Spool` has the directory open

Each record is one frame (`producers.sdk.spool_frame`): a body length, the CRC32
of the body, then the body (key, value, headers). A crash in the middle of a write
leaves a torn frame at the tail of a segment; opening the spool detects it
(short read, impossible length or bad CRC) and truncates the segment there.
The records of a torn frame were never acknowledged to anyone as spooled
(`append` had not returned), so dropping them loses nothing that was promised.

The cursor is rewritten by `ack` through a temporary file and an atomic
rename, so it is always either the old or the new cursor. Segments that lie
wholly before the cursor are deleted; when every record is acked the spool
starts a fresh segment and its disk usage returns to zero.

Durability is the `fsync` policy, a trade-off between throughput during an
outage and what a machine crash (power loss, kernel panic; not a process
crash, which the page cache survives) may lose:

* ``"always"`` (default): fsync after every `append` call and every cursor
  write. A returned `append` survives a machine crash. Costs one disk flush per
  batch, roughly 0.1-5 ms depending on the disk, so callers batch where they can.
* ``"segment"``: fsync only when a segment is rolled and on `close`. A machine
  crash may lose the tail of the current segment (at most `segment_bytes`) and
  replay some acked records again (the cursor may lag).
* ``"never"``: leave it to the OS (typically about 30 s of writes at risk).
  For simulators and tests.

A `Spool` is not thread-safe: one owner thread appends, replays and acks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple

from producers.sdk.errors import SpoolCorrupt, SpoolError, SpoolFull, SpoolLocked
from producers.sdk.spool_frame import (
    FrameReader,
    SpoolRecord,
    decode_body,
    encode_frame,
    read_frame,
)

__all__ = ["FsyncPolicy", "Spool", "SpoolPosition", "SpoolRecord"]

FsyncPolicy = Literal["always", "segment", "never"]
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
_SEGMENT_RE = re.compile(r"^segment-(\d{9})\.log$")
_CURSOR = "cursor"
_LOCK = "lock"


class SpoolPosition(NamedTuple):
    """The point just after one record: where reading resumes once it is acked.

    `ordinal` counts records since the spool was created, so positions compare
    in append order and `end.ordinal - cursor.ordinal` is the number of records
    still to replay.
    """

    segment: int
    offset: int
    ordinal: int


class Spool:
    """Append-only segments of `SpoolRecord`s bounded by `max_bytes` on disk.

    Opening scans every live segment, truncates torn tails and deletes
    segments before the cursor; `recovered_bytes` says how much was cut.
    Raises `SpoolLocked` if another `Spool` holds the directory and
    `SpoolCorrupt` if the cursor file is damaged.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: FsyncPolicy = "always",
    ) -> None:
        if max_bytes <= 0 or segment_bytes <= 0:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(self._lock_fd)
            raise SpoolLocked(f"spool {directory} is open elsewhere") from err
        self._sizes: dict[int, int] = {}
        self._active_fd: int | None = None
        self.recovered_bytes = 0
        self._cursor = self._read_cursor()
        self._end = self._recover()
        self._closed = False

    # -- state -------------------------------------------------------------

    @property
    def cursor(self) -> SpoolPosition:
        """Everything before this position is acked."""
        return self._cursor

    @property
    def end(self) -> SpoolPosition:
        """The position after the last appended record."""
        return self._end

    @property
    def depth(self) -> int:
        """Records appended and not yet acked."""
        return self._end.ordinal - self._cursor.ordinal

    @property
    def disk_bytes(self) -> int:
        """Bytes the segments take on disk (acked records of a live segment included)."""
        return sum(self._sizes.values())

    # -- writing -------------------------------------------------------------

    def append(self, records: Sequence[SpoolRecord]) -> SpoolPosition:
        """Append `records` in order; return the position after the last one.

        All or nothing: raises `SpoolFull` (writing nothing) if the batch would
        take the spool over `max_bytes`. Blocks for an fsync under "always".
        """
        self._check_open()
        if not records:
            return self._end
        frames = [encode_frame(record) for record in records]
        data = b"".join(frames)
        available = self.max_bytes - self.disk_bytes
        if len(data) > available:
            raise SpoolFull(len(data), max(available, 0))
        segment = self._end.segment
        if self._sizes.get(segment, 0) >= self.segment_bytes:
            self._roll()
            segment = self._end.segment
        fd = self._open_active()
        start = self._sizes[segment]
        try:
            written = os.pwrite(fd, data, start)
            if written != len(data):
                raise SpoolError(f"short write to the spool: {written} of {len(data)} bytes")
        except (OSError, SpoolError):
            os.ftruncate(fd, start)  # keep the segment a whole number of frames
            raise
        if self.fsync == "always":
            os.fsync(fd)
        self._sizes[segment] = start + len(data)
        self._end = SpoolPosition(segment, start + len(data), self._end.ordinal + len(frames))
        return self._end

    def _open_active(self) -> int:
        if self._active_fd is None:
            segment = self._end.segment
            path = self._segment_path(segment)
            created = not path.exists()
            self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            self._sizes.setdefault(segment, 0)
            if created and self.fsync == "always":
                self._fsync_directory()
        return self._active_fd

    def _roll(self) -> None:
        self._close_active(sync=self.fsync != "never")
        nxt = self._end.segment + 1
        self._end = SpoolPosition(nxt, 0, self._end.ordinal)

    def _close_active(self, *, sync: bool) -> None:
        if self._active_fd is not None:
            if sync:
                os.fsync(self._active_fd)
            os.close(self._active_fd)
            self._active_fd = None

    # -- reading -------------------------------------------------------------

    def replay(
        self, after: SpoolPosition | None = None
    ) -> Generator[tuple[SpoolPosition, SpoolRecord], None, None]:
        """Yield unacked records in append order with the position after each.

        Starts at the cursor, or after `after` when that lies beyond the
        cursor. Lazy: records appended while iterating are yielded too, and
        acking while iterating is allowed; close the generator when done with it
        early (it holds a segment file open). Raises `SpoolCorrupt` if a frame
        validated on open no longer reads back.
        """
        self._check_open()
        start = self._cursor if after is None or after.ordinal <= self._cursor.ordinal else after
        segment, offset, index = start
        while True:
            if segment not in self._sizes:
                later = [n for n in self._sizes if n > segment]
                if not later:
                    return
                segment, offset = min(later), 0
            reader = FrameReader(self._segment_path(segment))
            try:
                while offset < self._sizes.get(segment, 0):
                    frame = read_frame(reader, offset, self._sizes[segment])
                    if frame is None:
                        raise SpoolCorrupt(f"segment {segment} unreadable at {offset}")
                    body, offset = frame
                    index += 1
                    yield SpoolPosition(segment, offset, index), decode_body(body)
            finally:
                reader.close()
            later = [n for n in self._sizes if n > segment]
            if not later:
                return
            segment, offset = min(later), 0

    # -- acking --------------------------------------------------------------

    def ack(self, position: SpoolPosition) -> None:
        """Mark every record up to and including the one ending at `position`
        as done, persist the cursor (atomic rename) and delete segments that
        hold only acked records. Acking at or before the cursor is a no-op;
        raises `SpoolError` for a position beyond `end`."""
        self._check_open()
        if position.ordinal <= self._cursor.ordinal:
            return
        if position.ordinal > self._end.ordinal:
            raise SpoolError(f"ack beyond the end of the spool: {position} > {self._end}")
        if position.ordinal == self._end.ordinal:
            # Everything is acked: start afresh so disk usage drops to zero.
            self._close_active(sync=False)
            fresh = SpoolPosition(self._end.segment + 1, 0, position.ordinal)
            self._write_cursor(fresh)
            for segment in list(self._sizes):
                self._delete_segment(segment)
            self._end = fresh
            return
        cursor = position
        if position.offset >= self._sizes.get(position.segment, 0):
            cursor = SpoolPosition(
                min(n for n in self._sizes if n > position.segment), 0, position.ordinal
            )
        self._write_cursor(cursor)
        for segment in [n for n in self._sizes if n < cursor.segment]:
            self._delete_segment(segment)

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Sync (unless "never") and release the directory. Idempotent."""
        if self._closed:
            return
        self._close_active(sync=self.fsync != "never")
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._closed = True

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError("spool is closed")

    def _segment_path(self, segment: int) -> Path:
        return self.directory / f"segment-{segment:09d}.log"

    def _read_cursor(self) -> SpoolPosition:
        path = self.directory / _CURSOR
        if not path.exists():
            return SpoolPosition(1, 0, 0)
        try:
            raw = json.loads(path.read_text())
            return SpoolPosition(int(raw["segment"]), int(raw["offset"]), int(raw["ordinal"]))
        except (ValueError, KeyError, TypeError) as err:
            raise SpoolCorrupt(f"unreadable spool cursor {path}: {err}") from err

    def _write_cursor(self, cursor: SpoolPosition) -> None:
        path = self.directory / _CURSOR
        tmp = path.with_suffix(".tmp")
        data = json.dumps(cursor._asdict()).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            if self.fsync == "always":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if self.fsync == "always":
            self._fsync_directory()
        self._cursor = cursor

    def _delete_segment(self, segment: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._segment_path(segment).unlink()
        self._sizes.pop(segment, None)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _recover(self) -> SpoolPosition:
        """Scan live segments from the cursor; truncate torn tails; return `end`."""
        found = sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := _SEGMENT_RE.match(p.name))
        )
        cursor = self._cursor
        for segment in found:
            if segment < cursor.segment:
                self._segment_path(segment).unlink()
                continue
            self._sizes[segment] = self._scan(segment)
        live = sorted(self._sizes)
        if cursor.segment not in self._sizes:
            first = live[0] if live else cursor.segment
            cursor = SpoolPosition(first, 0, cursor.ordinal)
        elif cursor.offset > self._sizes[cursor.segment]:
            # Records past the cursor were torn away; the cursor cannot point past the data.
            cursor = SpoolPosition(cursor.segment, self._sizes[cursor.segment], cursor.ordinal)
        self._cursor = cursor
        count = 0
        for segment in live:
            count += self._count(segment, cursor.offset if segment == cursor.segment else 0)
        if not live:
            return SpoolPosition(cursor.segment, 0, cursor.ordinal)
        last = live[-1]
        return SpoolPosition(last, self._sizes[last], cursor.ordinal + count)

    def _scan(self, segment: int) -> int:
        """Length of the valid prefix of `segment`, truncating anything after it."""
        path = self._segment_path(segment)
        size = path.stat().st_size
        reader = FrameReader(path)
        offset = 0
        try:
            while (frame := read_frame(reader, offset, size)) is not None:
                offset = frame[1]
        finally:
            reader.close()
        if offset < size:
            self.recovered_bytes += size - offset
            os.truncate(path, offset)
        return offset

    def _count(self, segment: int, start: int) -> int:
        reader = FrameReader(self._segment_path(segment))
        count, offset, limit = 0, 0, self._sizes[segment]
        try:
            while (frame := read_frame(reader, offset, limit)) is not None:
                offset = frame[1]
                count += offset > start
        finally:
            reader.close()
        return count
