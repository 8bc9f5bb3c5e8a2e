"""The route step on DeviceBatch records: a batch routes like its events sent one
by one; what spoils a record is one dead letter, what spoils an event is that
event's dead letter, by index, and its neighbours go on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from backends.dlq_limit import DlqLimit, DlqLimitExceeded, DlqPolicy
from privacy.consent import ConsentPolicy
from privacy.scope import Scope
from schemas.batch import (
    MAX_BATCH_BYTES,
    batch_header,
    encode_batch,
)
from schemas.codec import encode, encode_event
from schemas.errors import SchemaError
from streams.dedup import DeviceSeen
from streams.router import RawMessage, RouteConfig, RouteResult, route_batch
from tests.unit.privacy.privacy_events import (
    ORG,
    PAYLOADS,
    SUBJECT,
    TUESDAY_10_UTC,
    make_event,
)
from tests.unit.streams.batch_records import NOW, as_batch

ALL = frozenset(Scope)
POLICY = ConsentPolicy(
    subject_id=SUBJECT,
    org_id=ORG,
    version=3,
    scopes=ALL,
    changed_by="admin",
    changed_at=TUESDAY_10_UTC - 10,
    reason=None,
)


def events(n: int, first_seq: int = 1, device: str = "dev-1") -> list[dict[str, Any]]:
    kinds = sorted(PAYLOADS)
    return [
        make_event(
            kinds[i % len(kinds)],
            seq=first_seq + i,
            device_id=device,
            event_id=str(uuid.UUID(int=first_seq + i)),
            ts=TUESDAY_10_UTC + i * 1000,
        )
        for i in range(n)
    ]


def raw(value: bytes, offset: int = 0, key: bytes = b"dev-1") -> RawMessage:
    return RawMessage(key, value, "capture.events", 3, offset)


def route(
    msgs: list[RawMessage],
    state: dict[str, DeviceSeen] | None = None,
    pol: ConsentPolicy | None = POLICY,
) -> RouteResult:
    store = state if state is not None else {}
    return route_batch(
        msgs,
        now=NOW,
        consent=lambda s: pol,
        hours=lambda o: None,
        seen=lambda d: store.setdefault(d, DeviceSeen()),
    )


def summary(out: RouteResult, state: dict[str, DeviceSeen]) -> Any:
    return (
        out.clean,
        [(d.reason, d.error) for d in out.dead],
        out.drops,
        out.redactions,
        out.seq_regressions,
        out.outcomes,
        {k: v.to_dict() for k, v in state.items()},
    )


def test_a_batch_of_n_events_routes_exactly_like_the_same_n_single_records() -> None:
    evs = events(12)
    evs[3]["payload"] = {
        "type": "TerminalCommand",
        "cwd_hash": "c",
        "exit_code": 0,
        "command": "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
    }
    evs[5]["ts"] = NOW + 3600 * 1_000_000  # impossible: dead-lettered
    evs[7]["seq"] = 30  # a jump, then a regression below it
    seen_before = {"dev-1": DeviceSeen()}
    seen_before["dev-1"].seen(2)  # an earlier batch passed seq 2 on: a duplicate now
    earlier = {k: DeviceSeen.from_dict(v.to_dict()) for k, v in seen_before.items()}
    singles_state = {k: DeviceSeen.from_dict(v.to_dict()) for k, v in earlier.items()}
    batch_state = {k: DeviceSeen.from_dict(v.to_dict()) for k, v in earlier.items()}

    singles = route([raw(encode_event(e), offset=i) for i, e in enumerate(evs)], singles_state)
    batched = route([raw(as_batch(evs, last_seq=30))], batch_state)

    assert summary(batched, batch_state) == summary(singles, singles_state)
    assert len(batched.clean) == 10 and batched.drops["duplicate"] == 1
    assert batched.seq_regressions == {"dev-1": 5}  # seq 1 (below 2), then 9-12 (below 30)
    (dead,) = batched.dead
    assert dead.reason == "impossible_timestamp"
    headers = dict(dead.headers())
    assert headers["event_index"] == b"5" and headers["batch_id"] == b"batch-1"
    assert (batched.records, batched.events) == (1, 12)


def test_batches_and_single_records_mix_in_one_poll() -> None:
    first, second = events(3), events(3, first_seq=4)
    state: dict[str, DeviceSeen] = {}
    out = route(
        [raw(as_batch(first)), raw(encode_event(second[0]), 1), raw(as_batch(second[1:]), 2)], state
    )
    assert [e["seq"] for e in out.clean] == [1, 2, 3, 4, 5, 6]
    assert out.outcomes == [False] * 6


def event_end(evs: list[dict[str, Any]], index: int) -> int:
    """The offset just after event ``index`` in `as_batch(evs)`."""
    data = as_batch(evs)
    end = len(data) - 1  # the array's terminating 0
    for e in reversed(evs[index + 1 :]):
        end -= len(encode("CaptureEvent", e, check_domains=False)) - 10
    return end


def test_a_truncated_batch_keeps_its_good_events_and_dead_letters_the_lost_end() -> None:
    evs = events(5)
    data = as_batch(evs)[: event_end(evs, 2) + 4]  # cut inside event 3
    out = route([raw(data, offset=9), raw(as_batch(events(2, first_seq=6)), 10)])
    assert [e["seq"] for e in out.clean] == [1, 2, 3, 6, 7]
    assert [(g.batch_id, len(g.events)) for g in out.groups] == [("batch-1", 3), ("batch-1", 2)]
    (dead,) = out.dead
    assert dead.reason == "truncated_batch" and dead.value == data
    headers = dict(dead.headers())
    assert (headers["original_offset"], headers["batch_id"]) == (b"9", b"batch-1")
    assert (headers["lost_from_index"], headers["lost_count"], headers["lost_seqs"]) == (
        b"3",
        b"2",
        b"4-5",
    )
    assert "event_index" not in headers
    # the dead-letter limit sees the two lost events, after the three kept
    assert out.outcomes == [False, False, False, True, True, False, False]
    assert out.events == 7


def test_a_batch_cut_in_its_header_is_one_dead_letter_for_the_record() -> None:
    data = as_batch(events(5))[:30]
    out = route([raw(data, offset=9)])
    (dead,) = out.dead
    assert dead.reason == "truncated_batch" and dead.value == data
    assert "lost_from_index" not in dict(dead.headers())
    assert out.clean == [] and out.outcomes == [True]


def test_a_batch_over_the_size_limit_keeps_the_events_that_fit() -> None:
    evs = events(4, first_seq=1)
    evs[2]["payload"] = {
        "type": "TerminalCommand",
        "command": "x" * MAX_BATCH_BYTES,
        "exit_code": 0,
        "cwd_hash": "c",
    }
    data = as_batch(evs)
    out = route([raw(data), raw(as_batch(events(2, first_seq=5)), 1)])
    assert [e["seq"] for e in out.clean] == [1, 2, 5, 6]  # the next record goes on
    (dead,) = out.dead
    # a value that could not be a capture.dlq record is not carried; its size is
    assert (dead.reason, dead.value) == ("batch_too_large", None)
    headers = dict(dead.headers())
    assert headers["value_bytes"] == str(len(data)).encode()
    assert (headers["lost_from_index"], headers["lost_count"], headers["lost_seqs"]) == (
        b"2",
        b"2",
        b"3-4",
    )
    assert out.outcomes == [False, False, True, True, False, False]


def test_a_batch_over_the_event_limit_keeps_the_first_events() -> None:
    evs = events(13, first_seq=1)
    store: dict[str, DeviceSeen] = {}
    out = route_batch(
        [raw(as_batch(evs))],
        now=NOW,
        consent=lambda s: POLICY,
        hours=lambda o: None,
        seen=lambda d: store.setdefault(d, DeviceSeen()),
        config=RouteConfig(max_batch_events=10),
    )
    assert [e["seq"] for e in out.clean] == list(range(1, 11))
    (dead,) = out.dead
    assert dead.reason == "batch_too_large"
    headers = dict(dead.headers())
    assert (headers["lost_from_index"], headers["lost_count"], headers["lost_seqs"]) == (
        b"10",
        b"3",
        b"11-13",
    )
    assert out.outcomes == [False] * 10 + [True] * 3  # under max_lost_weight: each counts
    assert store["dev-1"].max_seq == 10  # the lost seqs are not marked seen: a resend lands


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject_id", "another-person"), ("device_id", "dev-2"), ("org_id", "org-2")],
)
def test_an_event_disagreeing_with_its_header_is_dead_lettered_alone(
    field: str, value: str
) -> None:
    evs = events(5)
    evs[2][field] = value
    out = route([raw(as_batch(evs), offset=4)])
    (dead,) = out.dead
    assert dead.reason == "batch_header_mismatch"
    headers = dict(dead.headers())
    assert (headers["event_index"], headers["batch_id"], headers["original_offset"]) == (
        b"2",
        b"batch-1",
        b"4",
    )
    assert dead.value is not None
    from schemas.codec import decode_event

    alone = decode_event(dead.value)  # the refused event alone, as a single record
    assert alone["event_id"] == evs[2]["event_id"] and alone[field] == value
    assert [e["seq"] for e in out.clean] == [1, 2, 4, 5]
    assert out.outcomes == [False, False, True, False, False]


def test_a_repeated_seq_in_a_batch_is_dead_lettered_and_the_first_kept() -> None:
    evs = events(4)
    evs[3]["seq"] = 2
    out = route([raw(as_batch(evs))])
    (dead,) = out.dead
    assert dead.reason == "duplicate_seq" and dict(dead.headers())["event_index"] == b"3"
    assert [e["event_id"] for e in out.clean] == [e["event_id"] for e in evs[:3]]


def test_an_event_out_of_its_domain_is_dead_lettered_alone() -> None:
    evs = events(3)
    evs[0]["payload"] = {**PAYLOADS["KeyInput"], "count": 0}
    out = route([raw(as_batch(evs))])
    assert [(d.reason, dict(d.headers())["event_index"]) for d in out.dead] == [
        ("invalid_field", b"0")
    ]
    assert len(out.clean) == 2


def test_the_dead_letter_limit_counts_events_not_records() -> None:
    evs = events(10)
    for event in evs:
        event["subject_id"] = "someone-else"  # every event disagrees with the header
    out = route([raw(as_batch(evs, subject_id=SUBJECT))])
    assert len(out.dead) == 10 and out.outcomes == [True] * 10
    limit = DlqPolicy(DlqLimit(max_consecutive=10, min_observed=10_000))
    with pytest.raises(DlqLimitExceeded):
        for rejected in out.outcomes:
            limit.observe(rejected)


def test_one_record_losing_many_events_does_not_stop_the_worker_a_run_of_them_does() -> None:
    # A client's batch of 20 events where the worker takes 5: 15 lost, weighing
    # at most max_lost_weight (3 here) against a limit of 10 rejected in a row.
    # The worker would read the record again after a stop and stop again, for good.
    config = RouteConfig(max_batch_events=5, max_lost_weight=3)

    def one(first_seq: int) -> RouteResult:
        return route_batch(
            [raw(as_batch(events(20, first_seq=first_seq)), offset=first_seq)],
            now=NOW,
            consent=lambda s: POLICY,
            hours=lambda o: None,
            seen=lambda d: DeviceSeen(),
            config=config,
        )

    out = one(1)
    assert out.outcomes == [False] * 5 + [True] * 3
    assert dict(out.dead[0].headers())["lost_count"] == b"15"  # the count, not the weight
    limit = DlqPolicy(DlqLimit(max_consecutive=10, min_observed=10_000))
    for rejected in out.outcomes:
        limit.observe(rejected)  # one record: no stop
    with pytest.raises(DlqLimitExceeded):
        for first_seq in (21, 41, 61):  # every record losing its end: a bad client or deploy
            for rejected in one(first_seq).outcomes[5:]:
                limit.observe(rejected)


def test_without_consent_a_batch_is_dropped_event_by_event() -> None:
    out = route([raw(as_batch(events(6)))], pol=None)
    assert out.clean == [] and out.dead == [] and out.drops == {"no_consent": 6}


def test_a_good_batch_written_by_the_encoder_routes_whole() -> None:
    evs = events(20)
    try:
        data = encode_batch(batch_header(evs, batch_id="b", sent_ts=NOW), evs)
    except SchemaError as err:  # pragma: no cover - the sample events are valid
        pytest.fail(str(err))
    out = route([raw(data)])
    assert [e["event_id"] for e in out.clean] == [e["event_id"] for e in evs]
    assert out.dead == [] and out.events == 20
