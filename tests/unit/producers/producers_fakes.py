"""In-memory stand-ins for the broker side of the capture SDK (unit tests only)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from producers.sdk.spool_frame import Header
from producers.sdk.transport import DeliveryCallback, DeliveryFailure

TIMED_OUT = DeliveryFailure(reason="msg_timed_out", retriable=True)
TOO_LARGE = DeliveryFailure(reason="msg_size_too_large", retriable=False)
FATAL = DeliveryFailure(reason="fatal", retriable=True, fatal=True)
PURGED = DeliveryFailure(reason="purge_queue", retriable=True)


class FakeClock:
    """A monotonic clock that moves only when told (or when a fake waits)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance


@dataclass
class FakeBroker:
    """What reached the topic, shared by every transport a test creates.

    `mode` decides what `poll` does with queued records: "up" delivers them,
    "hold" keeps them queued (broker unreachable, timeout not reached yet),
    "timeout" fails them with a retriable timeout. `script` overrides the
    outcome of the next records, one entry each (None = delivered).
    """

    mode: str = "up"
    capacity: int = 10_000
    script: deque[DeliveryFailure | None] = field(default_factory=deque)
    delivered: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    transports: list[FakeTransport] = field(default_factory=list)

    @property
    def values(self) -> list[bytes]:
        return [value for _key, value in self.delivered]

    def transport(self, clock: FakeClock | None = None) -> FakeTransport:
        made = FakeTransport(self, clock)
        self.transports.append(made)
        return made


class FakeTransport:
    """A `Transport` over a `FakeBroker`; polling advances the fake clock."""

    def __init__(self, broker: FakeBroker, clock: FakeClock | None) -> None:
        self.broker = broker
        self.clock = clock
        self.queue: deque[tuple[bytes | None, bytes, DeliveryCallback]] = deque()
        self.purged = False

    def produce(
        self,
        key: bytes | None,
        value: bytes,
        headers: Sequence[Header],
        on_delivery: DeliveryCallback,
    ) -> None:
        if self.purged:
            raise AssertionError("produce on a purged (replaced) transport")
        if len(self.queue) >= self.broker.capacity:
            raise BufferError("queue full")
        self.queue.append((key, value, on_delivery))

    def poll(self, timeout: float) -> int:
        if self.clock is not None:
            self.clock.advance(max(timeout, 0.001))
        if self.broker.mode == "hold" and not self.broker.script:
            return 0
        served = 0
        while self.queue:
            if self.broker.mode == "hold" and not self.broker.script:
                break
            key, value, callback = self.queue.popleft()
            if self.broker.script:
                outcome = self.broker.script.popleft()
            else:
                outcome = TIMED_OUT if self.broker.mode == "timeout" else None
            if outcome is None:
                self.broker.delivered.append((key, value))
            callback(outcome)
            served += 1
        return served

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return len(self.queue)

    def purge(self) -> None:
        self.purged = True
        while self.queue:
            _key, _value, callback = self.queue.popleft()
            callback(PURGED)
