"""A batch's offsets become committable only once it is durable, and a failed
batch's never (faust's ack bookkeeping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.types.tuples import ConsumerMessage

from streams.app import HeldAcks, withhold_acks


class RecordingConsumer:
    """Stands in for faust's consumer where a message's final ack lands."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: Any) -> bool:
        self.acked.append(message.offset)
        return True


@dataclass
class Event:
    message: ConsumerMessage
    consumer: RecordingConsumer | None = None

    def ack(self) -> bool:  # faust's Event.ack: the message's ack by the app's consumer
        return self.message.ack(self.consumer)  # type: ignore[arg-type]


def _events(offsets: range) -> list[Event]:
    out = []
    for offset in offsets:
        message = ConsumerMessage("capture.events", 0, offset, 0.0, 0, None, b"k", b"v", None)
        message.incref()  # delivered to one stream, as faust does
        out.append(Event(message))
    return out


def test_acking_a_withheld_batch_records_nothing() -> None:
    consumer = RecordingConsumer()
    done, failed = _events(range(0, 3)), _events(range(3, 6))
    for e in done:
        e.message.ack(consumer)  # type: ignore[arg-type]
    withhold_acks(failed)
    for e in failed:  # what take_events does when the agent leaves the batch
        e.message.ack(consumer)  # type: ignore[arg-type]
    assert consumer.acked == [0, 1, 2]


def test_a_held_batch_is_acked_only_when_it_is_durable() -> None:
    consumer = RecordingConsumer()
    batch = _events(range(0, 3))
    for e in batch:
        e.consumer = consumer
    held = HeldAcks(batch)
    for e in batch:  # take_events acks when the agent takes the next batch
        e.ack()
    assert consumer.acked == []  # committing in the background: not yet
    held.ack()  # its outputs acknowledged and its states stored
    assert consumer.acked == [0, 1, 2]


def test_a_held_batch_that_is_lost_is_never_acked() -> None:
    consumer = RecordingConsumer()
    batch = _events(range(0, 3))
    for e in batch:
        e.consumer = consumer
    held = HeldAcks(batch)
    for e in batch:
        e.ack()
    held.withhold()  # its commit failed
    held.ack()
    assert consumer.acked == []
