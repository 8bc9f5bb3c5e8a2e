"""A failed batch's offsets never become committable (faust's ack bookkeeping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.types.tuples import ConsumerMessage

from streams.app import withhold_acks


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
