"""How the sink commits through a broker failover or a consumer-group rebalance.

A synchronous offset commit (or a read of committed offsets) fails in three ways,
told apart by librdkafka's error code (`classify_commit_error`):

- *retriable*: the group coordinator moved or is loading (a broker was killed, a
  controller fenced it), or the request timed out: the same commit succeeds
  once the group has a coordinator again. `commit_retrying` retries it with
  backoff, logging a WARNING per attempt, for up to `CommitRetry.deadline_s`.
- *rebalanced*: this member's generation is gone (a rebalance began, the member
  was fenced): the partitions may belong to another sink now. The caller must
  not go on with the batch; whoever is assigned the partition resumes from
  what is committed (a committed intent replays the same batch).
- anything else, or a retriable error past the deadline: fatal
  (`FatalSinkError`); offsets stay as they are, so a restart loses nothing.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

from sinks import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


class CommitFailure(enum.Enum):
    RETRIABLE = "retriable"
    REBALANCED = "rebalanced"
    FATAL = "fatal"


RETRIABLE_CODES: frozenset[int] = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._WAIT_COORD,
        KafkaError._ALL_BROKERS_DOWN,
    }
)

REBALANCE_CODES: frozenset[int] = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
    }
)


def classify_commit_error(code: int) -> CommitFailure:
    """The kind of a commit (or committed-offsets) failure with librdkafka error `code`."""
    if code in RETRIABLE_CODES:
        return CommitFailure.RETRIABLE
    if code in REBALANCE_CODES:
        return CommitFailure.REBALANCED
    return CommitFailure.FATAL


class CommitError(Exception):
    """A commit failed for good (`kind` FATAL, or RETRIABLE past the deadline) or the
    member lost its partitions (`kind` REBALANCED)."""

    def __init__(self, kind: CommitFailure, error: KafkaError | str) -> None:
        super().__init__(str(error))
        self.kind = kind


@dataclass(frozen=True)
class CommitRetry:
    """Backoff of `commit_retrying`: `first_s` doubling up to `max_s`, for `deadline_s`
    in all (a controller fences a dead broker within its session timeout, 6-45 s)."""

    first_s: float = 0.2
    max_s: float = 2.0
    deadline_s: float = 120.0


def _kafka_error(err: Exception) -> KafkaError | None:
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        return err.args[0]
    return None


def commit_retrying(
    call: Callable[[], T],
    what: str,
    retry: CommitRetry = CommitRetry(),
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call` (a synchronous commit or committed-offsets read; blocks) until it
    succeeds or fails for a reason other than a retriable one; returns its result.

    Raises `CommitError` with kind REBALANCED when the member lost its generation
    (the caller drops what it holds of the partitions), with kind FATAL on any
    other Kafka error or when retriable errors outlast `retry.deadline_s`. Errors
    that are not Kafka errors propagate unchanged."""
    started = clock()
    delay = retry.first_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except KafkaException as exc:
            err = _kafka_error(exc)
            if err is None:
                raise
            kind = classify_commit_error(err.code())
            if kind is not CommitFailure.RETRIABLE:
                raise CommitError(kind, err) from exc
            if clock() - started + delay > retry.deadline_s:
                raise CommitError(
                    CommitFailure.FATAL,
                    f"{what}: still failing after {attempt} attempts in "
                    f"{retry.deadline_s:.0f} s: {err}",
                ) from exc
            log.warning(
                "%s failed (%s), retriable: attempt %d, again in %.1f s",
                what,
                err.name(),
                attempt,
                delay,
            )
            metrics.COMMIT_RETRIES.inc()
            sleep(delay)
            delay = min(delay * 2, retry.max_s)


def raise_partition_errors(results: Sequence[object] | None) -> None:
    """Raise the first per-partition error of a commit's result list as KafkaException,
    so that `commit_retrying` classifies it like a request-level error."""
    for result in results or ():
        error = getattr(result, "error", None)
        if error is not None:
            raise KafkaException(error)
