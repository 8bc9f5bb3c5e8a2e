"""The sink's commit retries: a coordinator moving during a broker failover is waited out,
a rebalance gives the batch up, anything else stops the sink."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from sinks.commits import (
    CommitError,
    CommitFailure,
    CommitRetry,
    classify_commit_error,
    commit_retrying,
    raise_partition_errors,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def failing(codes: list[int], result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(codes):
            raise KafkaException(KafkaError(codes[len(calls) - 1]))
        return result

    return calls, call


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
    ],
)
def test_a_coordinator_moving_during_a_broker_failover_is_retried_until_the_commit_succeeds(
    code: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    calls, call = failing([code, code, code])
    assert commit_retrying(call, "t: commit", clock=clock, sleep=clock.sleep) == "ok"
    assert len(calls) == 4
    assert clock.sleeps == [0.2, 0.4, 0.8]
    assert "t: commit failed" in caplog.text and "retriable: attempt 3" in caplog.text


@pytest.mark.parametrize(
    "code",
    [KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID],
)
def test_a_rebalance_is_not_retried_but_reported_so_the_batch_is_given_up(code: int) -> None:
    clock = Clock()
    calls, call = failing([code])
    with pytest.raises(CommitError) as err:
        commit_retrying(call, "t: commit", clock=clock, sleep=clock.sleep)
    assert err.value.kind is CommitFailure.REBALANCED
    assert len(calls) == 1 and clock.sleeps == []


def test_an_unknown_error_stops_the_sink_at_once() -> None:
    clock = Clock()
    calls, call = failing([KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(CommitError) as err:
        commit_retrying(call, "t: commit", clock=clock, sleep=clock.sleep)
    assert err.value.kind is CommitFailure.FATAL and len(calls) == 1


def test_retriable_errors_past_the_deadline_stop_the_sink_naming_the_attempts() -> None:
    clock = Clock()
    _, call = failing([KafkaError.NOT_COORDINATOR] * 1000)
    with pytest.raises(CommitError) as err:
        commit_retrying(
            call,
            "t: commit",
            CommitRetry(first_s=1, max_s=4, deadline_s=20),
            clock=clock,
            sleep=clock.sleep,
        )
    assert err.value.kind is CommitFailure.FATAL
    assert "attempts in 20 s" in str(err.value)
    assert clock.now <= 20 and max(clock.sleeps) == 4


def test_a_partition_error_in_the_commit_result_is_classified_like_a_request_error() -> None:
    class Result:
        def __init__(self, error: KafkaError | None) -> None:
            self.error = error

    raise_partition_errors([Result(None)])
    with pytest.raises(KafkaException):
        raise_partition_errors([Result(None), Result(KafkaError(KafkaError.NOT_COORDINATOR))])
    assert classify_commit_error(KafkaError.NOT_COORDINATOR) is CommitFailure.RETRIABLE
