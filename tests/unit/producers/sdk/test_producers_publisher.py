"""Routing between broker and spool: what reaches the topic, in which order, and
what is left on disk, with an in-memory transport."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from producers.sdk.errors import SpoolFull
from producers.sdk.metrics import ProducerMetrics
from producers.sdk.publisher import SpoolingPublisher
from producers.sdk.spool import Spool
from tests.unit.producers.producers_fakes import FATAL, TIMED_OUT, TOO_LARGE, FakeBroker, FakeClock


class Harness:
    def __init__(self, tmp_path: Path, **options: object) -> None:
        self.dir = tmp_path / "spool"
        self.clock = FakeClock()
        self.broker = FakeBroker()
        self.registry = CollectorRegistry()
        self.options = {"retry_backoff_s": 0.0, **options}
        self.publisher = self.open()

    def open(self, **spool_options: object) -> SpoolingPublisher:
        return SpoolingPublisher(
            lambda: self.broker.transport(self.clock),
            Spool(self.dir, fsync="never", **spool_options),  # type: ignore[arg-type]
            ProducerMetrics.on(self.registry),
            clock=self.clock,
            **self.options,  # type: ignore[arg-type]
        )

    def publish(self, *values: str) -> None:
        for value in values:
            self.publisher.publish(b"dev-1", value.encode())

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    @property
    def delivered(self) -> list[str]:
        return [v.decode() for v in self.broker.values]


def spooled_values(directory: Path, publisher: SpoolingPublisher) -> list[str]:
    """What the spool holds, read the way a restarted client would."""
    publisher.close(0.0)
    with Spool(directory) as spool:
        return [record.value.decode() for _p, record in spool.replay()]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_with_the_broker_up_records_go_straight_through_in_order(h: Harness) -> None:
    h.publish("a", "b", "c")
    assert h.publisher.flush(1.0) == 0
    assert h.delivered == ["a", "b", "c"]
    assert h.publisher.spool_depth == 0
    assert h.sample("candor_producer_events_sent_total") == 3
    assert h.sample("candor_producer_events_spooled_total") == 0


def test_timed_out_records_are_spooled_and_replayed_in_order_when_the_broker_returns(
    h: Harness,
) -> None:
    h.broker.mode = "timeout"
    h.publish("a", "b")
    h.publisher.poll(0)
    assert h.publisher.spool_depth == 2
    h.publish("c", "d")  # the spool is not empty: these queue up behind a and b
    assert h.publisher.spool_depth == 4
    assert h.sample("candor_producer_spool_depth_records") == 4
    assert h.sample("candor_producer_delivery_errors_total", reason="msg_timed_out") >= 2
    h.broker.mode = "up"
    assert h.publisher.flush(10.0) == 0
    assert h.delivered == ["a", "b", "c", "d"]
    assert h.sample("candor_producer_spool_depth_records") == 0
    assert h.sample("candor_producer_spool_bytes") == 0
    h.publish("e")  # spool empty again: direct
    h.publisher.poll(0)
    assert h.delivered[-1] == "e"


@pytest.mark.parametrize(
    "in_flight_outcome,expected_spool",
    [("up", ["c", "d"]), ("timeout", ["a", "b", "c", "d"])],
)
def test_records_refused_while_others_are_in_flight_wait_behind_them(
    h: Harness, in_flight_outcome: str, expected_spool: list[str]
) -> None:
    h.broker.mode = "hold"
    h.broker.capacity = 2
    h.publish("a", "b", "c", "d")  # c and d: local queue full while a and b are in flight
    assert h.sample("candor_producer_delivery_errors_total", reason="queue_full") == 1
    assert h.publisher.spool_depth == 0  # held in memory until a and b settle
    assert h.publisher.pending == 4
    h.broker.mode = in_flight_outcome
    h.publisher.poll(0)
    h.broker.mode = "hold"  # keep the replay from delivering before we look
    assert spooled_values(h.dir, h.publisher) == expected_spool
    h.broker.mode = "up"
    h.publisher = h.open()
    assert h.publisher.flush(10.0) == 0
    assert h.delivered == ["a", "b", "c", "d"]


def spool_while_down(h: Harness, *values: str) -> None:
    """Publish `values` while the broker holds them, then close: all are spooled."""
    h.broker.mode = "hold"
    h.publish(*values)
    assert h.publisher.close(0.0) == len(values)
    h.publisher = h.open()


def test_a_replay_failure_acks_only_the_delivered_prefix_and_retries_after_backoff(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, retry_backoff_s=5.0)
    spool_while_down(h, "a", "b", "c", "d")
    h.broker.mode = "up"
    h.broker.script.extend([None, TIMED_OUT, None, None])
    h.publisher.poll(0)  # replays a..d
    h.publisher.poll(0)  # a delivered, b fails, c and d delivered
    assert h.delivered == ["a", "c", "d"]
    assert h.publisher.spool_depth == 3  # b is not acked, so neither are c and d
    h.publisher.poll(0)
    h.publisher.poll(0)
    assert h.delivered == ["a", "c", "d"]  # still backing off
    assert h.publisher.flush(30.0) == 0
    assert h.delivered == ["a", "c", "d", "b", "c", "d"]  # at-least-once: c, d again


def test_the_spool_survives_a_restart_with_only_unacked_records(tmp_path: Path) -> None:
    h = Harness(tmp_path, retry_backoff_s=60.0)
    spool_while_down(h, "a", "b", "c")
    h.broker.mode = "up"
    h.broker.script.extend([None, TIMED_OUT, TIMED_OUT])
    h.publisher.poll(0)
    h.publisher.poll(0)
    assert h.publisher.close(0.0) == 2
    restarted = h.open()
    assert restarted.spool_depth == 2
    assert restarted.flush(10.0) == 0
    assert h.delivered == ["a", "b", "c"]


def test_close_while_the_broker_is_unreachable_keeps_everything_in_the_spool(
    h: Harness,
) -> None:
    h.broker.mode = "hold"
    h.publish("a", "b", "c")
    assert h.publisher.close(1.0) == 3  # purged from the transport into the spool
    h.broker.mode = "up"
    restarted = h.open()
    assert restarted.flush(10.0) == 0
    assert h.delivered == ["a", "b", "c"]


@pytest.mark.parametrize("replayed", [False, True])
def test_a_non_retriable_failure_drops_the_record_without_blocking_the_rest(
    h: Harness, replayed: bool
) -> None:
    if replayed:
        spool_while_down(h, "a", "b", "c")
        h.broker.mode = "up"
    h.broker.script.extend([None, TOO_LARGE, None])
    if not replayed:
        h.publish("a", "b", "c")
    assert h.publisher.flush(10.0) == 0
    assert h.delivered == ["a", "c"]
    assert h.sample("candor_producer_events_dropped_total", reason="msg_size_too_large") == 1


def test_a_fatal_failure_replaces_the_transport_and_keeps_the_record(h: Harness) -> None:
    h.broker.script.append(FATAL)
    h.publish("a", "b")
    h.publisher.poll(0)
    assert len(h.broker.transports) == 2
    assert h.broker.transports[0].purged
    assert h.publisher.flush(10.0) == 0
    assert sorted(h.delivered) == ["a", "b"]  # b was queued behind a: order may swap


def test_publish_raises_spool_full_when_the_broker_is_down_and_the_spool_is_full(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.publisher.close(0)
    h.publisher = h.open(max_bytes=110)  # two 53-byte frames
    h.broker.mode = "timeout"
    h.publish("a" * 30)
    h.publisher.poll(0)
    h.publish("b" * 30)
    with pytest.raises(SpoolFull):
        h.publish("c" * 30)
    assert h.sample("candor_producer_events_dropped_total", reason="spool_full") == 1
    h.broker.mode = "up"
    assert h.publisher.flush(10.0) == 0
    assert h.delivered == ["a" * 30, "b" * 30]


def test_flush_gives_up_at_the_timeout_and_reports_what_is_left(h: Harness) -> None:
    h.broker.mode = "timeout"
    h.publish("a", "b")
    start = h.clock()
    assert h.publisher.flush(3.0) == 2
    assert 3.0 <= h.clock() - start < 3.5


def test_replay_keeps_at_most_the_window_in_flight(tmp_path: Path) -> None:
    h = Harness(tmp_path, replay_window=3)
    spool_while_down(h, *"abcdefg")
    h.publisher.poll(0)
    assert len(h.broker.transports[-1].queue) == 3
    h.broker.mode = "up"
    assert h.publisher.flush(10.0) == 0
    assert h.delivered == list("abcdefg")
