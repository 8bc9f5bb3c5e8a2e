"""The per-batch path of the route step: a DeviceBatch that meets its conditions
is routed at once (time bounds, dedup, consent and capture hours decided once,
each distinct text redacted once) with exactly the outcome of the per-event
path; one that does not takes the per-event path."""

from __future__ import annotations

import copy
import uuid
from datetime import time
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.capture_hours import CaptureHours
from privacy.consent import ConsentPolicy
from privacy.scope import Scope
from schemas.codec import encode_event
from streams.dedup import DeviceSeen
from streams.router import RawMessage, RouteResult, route_batch
from tests.unit.privacy.privacy_events import ORG, PAYLOADS, SUBJECT, TUESDAY_10_UTC, make_event
from tests.unit.streams.batch_records import NOW, as_batch

S = 1_000_000


def policy(scopes: frozenset[Scope] = frozenset(Scope)) -> ConsentPolicy:
    return ConsentPolicy(
        subject_id=SUBJECT,
        org_id=ORG,
        version=3,
        scopes=scopes,
        changed_by="admin",
        changed_at=TUESDAY_10_UTC - 10,
        reason=None,
    )


def events(n: int, first_seq: int = 1) -> list[dict[str, Any]]:
    kinds = sorted(PAYLOADS)
    out = [
        make_event(
            kinds[i % len(kinds)],
            seq=first_seq + i,
            event_id=str(uuid.UUID(int=first_seq + i)),
            ts=TUESDAY_10_UTC + i * 1000,
        )
        for i in range(n)
    ]
    # what redaction and minimisation act on, repeated as capture repeats it
    out[0]["app"]["window_title"] = "mail to jane.doe@example.com - Inbox"
    out[1]["app"]["window_title"] = "mail to jane.doe@example.com - Inbox"
    for event in out:
        if event["payload"]["type"] == "KeyInput":
            event["payload"]["is_secure_field"] = True
        elif event["payload"]["type"] == "TerminalCommand":
            event["payload"]["command"] = "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"
    return out


def route(
    msgs: list[RawMessage],
    state: dict[str, DeviceSeen],
    pol: ConsentPolicy | None,
    hours: CaptureHours | None = None,
) -> RouteResult:
    return route_batch(
        msgs,
        now=NOW,
        consent=lambda s: pol,
        hours=lambda o: hours,
        seen=lambda d: state.setdefault(d, DeviceSeen()),
    )


def both_ways(
    evs: list[dict[str, Any]],
    pol: ConsentPolicy | None = None,
    hours: CaptureHours | None = None,
    before: list[int] = (),  # type: ignore[assignment]
    cuts: list[int] = (),  # type: ignore[assignment]
) -> tuple[RouteResult, RouteResult, dict[str, DeviceSeen], dict[str, DeviceSeen]]:
    """The batch routed as DeviceBatch records (one, or one per part between
    ``cuts``) in one call and as single records, from the same state."""
    pol = policy() if pol is None else pol
    batch_state: dict[str, DeviceSeen] = {"dev-1": DeviceSeen()}
    single_state: dict[str, DeviceSeen] = {"dev-1": DeviceSeen()}
    for seq in before:
        batch_state["dev-1"].seen(seq)
        single_state["dev-1"].seen(seq)
    bounds = [0, *cuts, len(evs)]
    batched = route(
        [
            RawMessage(b"dev-1", as_batch(copy.deepcopy(evs[a:b])), "capture.events", 0, i)
            for i, (a, b) in enumerate(pairwise(bounds))
        ],
        batch_state,
        pol,
        hours,
    )
    singles = route(
        [RawMessage(b"dev-1", encode_event(e), "capture.events", 0, i) for i, e in enumerate(evs)],
        single_state,
        pol,
        hours,
    )
    return batched, singles, batch_state, single_state


def same(
    batched: RouteResult, singles: RouteResult, a: dict[str, DeviceSeen], b: dict[str, DeviceSeen]
) -> None:
    assert batched.clean == singles.clean
    assert [(d.reason, d.error) for d in batched.dead] == [
        (d.reason, d.error) for d in singles.dead
    ]
    assert batched.drops == singles.drops
    assert batched.redactions == singles.redactions
    assert batched.seq_regressions == singles.seq_regressions
    assert batched.outcomes == singles.outcomes
    assert {k: v.to_dict() for k, v in a.items()} == {k: v.to_dict() for k, v in b.items()}


def test_a_good_batch_takes_the_fast_path_with_the_per_event_outcome() -> None:
    evs = events(27)
    batched, singles, a, b = both_ways(evs)
    assert batched.fast == 1 and singles.fast == 0
    same(batched, singles, a, b)
    assert len(batched.clean) == 27
    typed = sum(e["payload"]["type"] == "KeyInput" for e in evs)
    assert batched.redactions["secure_field"] == typed and batched.redactions["email"] == 2
    assert [len(g.events) for g in batched.groups] == [27]
    assert batched.groups[0].batch_id == "batch-1"


def test_a_batch_replayed_whole_is_dropped_as_duplicates_at_once() -> None:
    batched, singles, a, b = both_ways(events(9), before=list(range(1, 10)))
    assert batched.fast == 1
    same(batched, singles, a, b)
    assert batched.drops == {"duplicate": 9} and batched.groups == []


def test_without_consent_the_whole_batch_is_dropped_at_once_and_its_seqs_recorded() -> None:
    refused = ConsentPolicy(
        subject_id=SUBJECT,
        org_id=ORG,
        version=1,
        scopes=frozenset(),
        changed_by="admin",
        changed_at=0,
        reason=None,
    )
    batched, singles, a, b = both_ways(events(9), pol=refused)
    assert batched.fast == 1
    same(batched, singles, a, b)
    assert a["dev-1"].max_seq == 9


@pytest.mark.parametrize(
    "case",
    [
        "overlap",
        "out_of_order",
        "missing_scopes",
        "late_event",
        "hours_straddle",
        "hours_across_midnight",
    ],
)
def test_a_batch_failing_a_condition_takes_the_per_event_path(case: str) -> None:
    evs = events(12)
    before: list[int] = []
    pol: ConsentPolicy | None = None
    hours = None
    if case == "overlap":
        before = [1, 2, 3]  # a partial replay: some seen, some new
    elif case == "out_of_order":
        evs[4]["seq"], evs[5]["seq"] = evs[5]["seq"], evs[4]["seq"]
    elif case == "missing_scopes":
        pol = policy(frozenset({Scope.ACTIVITY_METADATA, Scope.KEYSTROKE_CONTENT}))
    elif case == "late_event":
        evs[3]["ts"] = NOW + 3600 * S  # impossible: that event is dead-lettered alone
    elif case == "hours_straddle":  # Tuesday 10:00 UTC: the window ends among the events
        hours = CaptureHours(ORG, frozenset(range(7)), time(9), time(10, 0, 0, 5000), "UTC")
    else:
        hours = CaptureHours(ORG, frozenset(range(7)), time(22), time(11), "UTC")
    batched, singles, a, b = both_ways(evs, pol=pol, hours=hours, before=before)
    assert batched.fast == 0
    same(batched, singles, a, b)
    if case == "missing_scopes":
        titles = {e["app"]["window_title"] for e in batched.clean}
        assert titles == {None}  # minimised per event
    if case == "hours_straddle":
        assert 0 < batched.drops["outside_capture_hours"] < 12


def test_capture_hours_holding_for_the_whole_batch_are_checked_once() -> None:
    hours = CaptureHours(ORG, frozenset(range(7)), time(9), time(17), "UTC")
    batched, singles, a, b = both_ways(events(12), hours=hours)
    assert batched.fast == 1
    same(batched, singles, a, b)


def test_single_records_and_batches_each_make_one_clean_group_per_record() -> None:
    evs = events(9)
    state: dict[str, DeviceSeen] = {}
    msgs = [
        RawMessage(b"dev-1", encode_event(evs[0]), "capture.events", 0, 0),
        RawMessage(b"dev-1", as_batch(evs[1:]), "capture.events", 0, 1),
    ]
    out = route(msgs, state, policy())
    assert [(g.batch_id, len(g.events)) for g in out.groups] == [
        (evs[0]["event_id"], 1),
        ("batch-1", 8),
    ]


def test_a_clock_change_inside_the_batch_sends_it_the_per_event_way() -> None:
    # Europe/Paris falls back from 03:00 to 02:00 on 2026-10-25 (01:00 UTC):
    # 02:45 and 02:40 local are both inside 02:30-04:00, the 02:10 between is not.
    hours = CaptureHours(ORG, frozenset(range(7)), time(2, 30), time(4), "Europe/Paris")
    fall_back = 1_792_890_000 * S  # 2026-10-25 01:00:00 UTC
    evs = events(3)
    for event, ts in zip(
        evs,
        (fall_back - 15 * 60 * S, fall_back + 10 * 60 * S, fall_back + 40 * 60 * S),
        strict=True,
    ):
        event["ts"] = ts
    now = fall_back + 3600 * S
    batch_state: dict[str, DeviceSeen] = {}
    single_state: dict[str, DeviceSeen] = {}
    batched = route_batch(
        [RawMessage(b"dev-1", as_batch(copy.deepcopy(evs)), "capture.events", 0, 0)],
        now=now,
        consent=lambda s: policy(),
        hours=lambda o: hours,
        seen=lambda d: batch_state.setdefault(d, DeviceSeen()),
    )
    singles = route_batch(
        [RawMessage(b"dev-1", encode_event(e), "capture.events", 0, i) for i, e in enumerate(evs)],
        now=now,
        consent=lambda s: policy(),
        hours=lambda o: hours,
        seen=lambda d: single_state.setdefault(d, DeviceSeen()),
    )
    assert batched.fast == 0
    same(batched, singles, batch_state, single_state)
    assert batched.drops["outside_capture_hours"] == 1


_TEXTS = [
    "",
    "Inbox",
    "mail to jane.doe@example.com - Inbox",
    "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
    "password=hunter2 and ghp_" + "a" * 36,
    "\uff46\uff55\uff4c\uff4c\u200bwidth AKIA\u200bIOSFODNN7EXAMPLE",
    "<SECRET:password> already",
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_good_batches_take_the_fast_path_with_the_per_event_outcome(
    data: st.DataObject,
) -> None:
    # the per-event work of the fast path (secure fields, typed text, redaction
    # with its memo, trails, seqs) against the per-event path, on varied content
    n = data.draw(st.integers(1, 12))
    kinds = st.sampled_from(sorted(PAYLOADS))
    text = st.sampled_from(_TEXTS)
    evs = []
    seq = data.draw(st.integers(1, 50))
    for i in range(n):
        kind = data.draw(kinds)
        event = make_event(
            kind,
            seq=seq,
            event_id=str(uuid.UUID(int=seq)),
            ts=TUESDAY_10_UTC + i * 1000,
            redactions=data.draw(st.sampled_from([[], ["email"], ["secure_field"]])),
        )
        seq += data.draw(st.integers(1, 3))
        event["app"]["window_title"] = data.draw(st.none() | text)
        payload = event["payload"]
        if kind == "KeyInput":
            payload["is_secure_field"] = data.draw(st.booleans())
            payload["key"] = data.draw(st.sampled_from([None, "a", "Enter", "c"]))
            payload["text"] = data.draw(st.none() | text)
            payload["modifiers"] = data.draw(st.sampled_from([[], ["ctrl"], ["shift"]]))
        elif kind == "TerminalCommand":
            payload["command"] = data.draw(text)
        elif kind == "IdeEdit":
            payload["diff"] = data.draw(st.none() | text)
        evs.append(event)
    before = list(range(1, data.draw(st.integers(1, 20))))
    if evs[0]["seq"] <= len(before):
        before = []
    # one record or several in one call: the redaction memo spans the call
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=3)))) if n > 1 else []
    batched, singles, a, b = both_ways(evs, before=before, cuts=cuts)
    assert batched.fast == len(cuts) + 1
    same(batched, singles, a, b)
