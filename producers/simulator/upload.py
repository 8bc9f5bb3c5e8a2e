"""Screen frames with pixels for a simulation: rendered, then put to the gateway.

`FramingSink` wraps the sink `producers.simulator.run_simulation` publishes to.
For each device it was given a token for, the first ``per_device`` of its
``ScreenFrame`` events get pixels (`producers.simulator.frames.render_frame`):
the event is published with the ref of the rendered PNG, and the PNG goes to
the gateway's ``PUT /v1/frames/{sha256}`` with that device's token, from a
small pool of upload threads, so the gateway's OCR redaction runs while the
simulation goes on. Other ScreenFrame events keep their made-up ref (no pixels
anywhere), so a run's OCR cost is bounded by ``per_device`` times the devices.

An upload that the gateway refuses for good (4xx other than 429) is counted,
not retried; 429, 503 and network errors are retried (after ``Retry-After``)
until the deadline given to `FramingSink.finish`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from producers.sdk.envelope import Event
from producers.simulator.frames import render_frame

__all__ = ["FrameUploadReport", "FramingSink", "put_frame"]


class _Sink(Protocol):
    def publish(self, event: Event) -> None: ...


@dataclass
class FrameUploadReport:
    """What became of the rendered frames. ``redactions``: word boxes blacked
    out by the gateway, per rule; ``refusals``: refused frames per reason."""

    rendered: int = 0
    stored: int = 0
    duplicates: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    redactions: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0  # still retrying (or never answered) at the deadline

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    retry_after_s: float


def put_frame(
    url: str, token: str, digest: str, data: bytes, timeout_s: float = 60.0
) -> _Answer | None:
    """One ``PUT /v1/frames/{digest}``; the answer, or None on a network error. Blocks."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/frames/{digest}",
        data=data,
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return _Answer(response.status, json.loads(response.read() or b"{}"), 0.0)
    except urllib.error.HTTPError as err:
        try:
            body = json.loads(err.read() or b"{}")
        except ValueError:
            body = {}
        retry = float(err.headers.get("Retry-After") or 1)
        return _Answer(err.code, body if isinstance(body, dict) else {}, retry)
    except OSError:
        return None


class FramingSink:
    """An `EventSink` that gives the first ``per_device`` ScreenFrame events of
    each device in ``tokens`` (device_id -> gateway bearer token) pixels and
    uploads them to the gateway at ``url`` with ``workers`` threads.

    `publish` blocks only for rendering (tens of ms per frame); call `finish`
    once the simulation is done. Not for use from several threads."""

    def __init__(
        self,
        sink: _Sink,
        url: str,
        tokens: Mapping[str, str],
        per_device: int,
        *,
        workers: int = 2,
        put: Callable[..., _Answer | None] = put_frame,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_device < 0:
            raise ValueError("per_device must be >= 0")
        self.sink, self.url, self.tokens, self.per_device = sink, url, dict(tokens), per_device
        self.report = FrameUploadReport()
        self._counts: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="frame-upload"
        )
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._put, self._clock, self._sleep = put, clock, sleep

    def publish(self, event: Event) -> None:
        """Publish ``event`` to the wrapped sink, with pixels when it is one of
        the frames to render (then queued for upload)."""
        device = str(event.get("device_id"))
        payload = event.get("payload") or {}
        if (
            payload.get("type") == "ScreenFrame"
            and device in self.tokens
            and self._counts.get(device, 0) < self.per_device
        ):
            self._counts[device] = self._counts.get(device, 0) + 1
            data, event = render_frame(event)
            self.report.rendered += 1
            digest = str(event["payload"]["ref"]).removeprefix("sha256:")
            self._pending.append(self._pool.submit(self._upload, self.tokens[device], digest, data))
        self.sink.publish(event)

    def _upload(self, token: str, digest: str, data: bytes) -> None:
        while True:
            answer = self._put(self.url, token, digest, data)
            if answer is not None and answer.status < 300:
                with self._lock:
                    if answer.body.get("stored"):
                        self.report.stored += 1
                    else:
                        self.report.duplicates += 1
                    for rule, n in (answer.body.get("redactions") or {}).items():
                        self.report.redactions[rule] = self.report.redactions.get(rule, 0) + n
                return
            if answer is not None and 400 <= answer.status < 500 and answer.status != 429:
                reason = str(answer.body.get("error") or answer.status)
                with self._lock:
                    self.report.refusals[reason] = self.report.refusals.get(reason, 0) + 1
                return
            wait = answer.retry_after_s if answer is not None else 1.0
            deadline = self._deadline
            if deadline is not None and self._clock() + wait > deadline:
                with self._lock:
                    self.report.unfinished += 1
                return
            self._sleep(min(max(wait, 0.2), 10.0))

    def finish(self, timeout_s: float = 300.0) -> FrameUploadReport:
        """Wait for the uploads (retries stop at ``timeout_s`` from now; those
        left are counted as unfinished); return the report. Blocks."""
        self._deadline = self._clock() + timeout_s
        for future in self._pending:
            left = max(0.0, self._deadline - self._clock())
            try:
                future.result(timeout=left + 70)  # one PUT may take its own timeout
            except TimeoutError:
                with self._lock:
                    self.report.unfinished += 1
            except Exception as err:  # an upload thread's own failure: counted, not fatal
                name = type(err).__name__
                with self._lock:
                    self.report.refusals[name] = self.report.refusals.get(name, 0) + 1
        self._pool.shutdown(wait=False, cancel_futures=True)
        return self.report
