"""The worker's Faust app class: faust's Kafka transport with a cheaper intake.

faust's consumer hands every fetched record to the app with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: the
callback (which puts the record into the agents' stream buffers) must stay
interruptible when a rebalance suspends the flow while a full buffer blocks
it. `Service.wait_first` makes four tasks per call for that, per record, which
on this project's 2-core machines took more CPU than everything else of
receiving a record (bench/faust_floor.py measures an agent that only
receives: about 6.5k events/s with it, about 12k without).

`EagerConsumer.wait_first` runs the first coroutine at once instead: when it
finishes without waiting (the buffer had room: nearly always) that is the
answer, and nothing was scheduled. When it has to wait, what is left of it
is handed to faust's `wait_first` as before, so a suspended flow interrupts
it exactly as it would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TransportT
from mode.services import WaitArgT, WaitResults


class Resumed(Awaitable[Any]):
    """Awaitable rest of a coroutine that was started by hand and stopped at
    `pending` (the future it waits on): awaiting it drives the coroutine on
    from there, passing cancellation and errors into it."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, None, Any]:
        pending = self.pending
        while True:
            thrown: BaseException | None = None
            try:
                yield pending
            except BaseException as exc:  # thrown in by the awaiting task: pass it on
                thrown = exc
            try:
                pending = self.coro.send(None) if thrown is None else self.coro.throw(thrown)
            except StopIteration as done:
                return done.value


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run `coro` until it first waits: `(True, result)` when it finished on
    the way, else `(False, Resumed(...))` to await for the rest. Exceptions
    propagate as from `await coro`."""
    try:
        pending = coro.send(None)
    except StopIteration as done:
        return True, done.value
    return False, Resumed(coro, pending)


class EagerConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer whose per-record hand-over runs eagerly."""

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        first = coros[0] if len(coros) == 2 else None
        if not asyncio.iscoroutine(first) or self.should_stop or self.suspend_flow.is_set():
            # a suspended flow (rebalance) must win over the hand-over: faust's way
            return await super().wait_first(*coros, timeout=timeout)
        finished, value = start_eagerly(first)
        if finished:
            other = coros[1]
            if asyncio.iscoroutine(other):
                other.close()  # never started: nothing to cancel
            return WaitResults([first], [value], False)
        return await super().wait_first(value, coros[1], timeout=timeout)


class EagerTransport(aiokafka_driver.Transport):
    Consumer = EagerConsumer


class App(faust.App):
    """faust.App on `EagerTransport` (same settings, same broker URLs)."""

    def _new_transport(self) -> TransportT:
        return EagerTransport(self.conf.broker_consumer, self)
