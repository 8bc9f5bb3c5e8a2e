"""The worker's batch processor against fakes: an output that records what is
sent and acknowledges on flush (or fails), a dict for the device table, a
consent registry, a key set and a clock, the way Arroyo tests a processing
strategy against a mock next step."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from backends.dlq_limit import DlqLimit, DlqLimitExceeded
from privacy.consent import ConsentPolicy
from privacy.content_keys import decrypt_record
from privacy.keyset import KeyRecord, KeySet
from privacy.scope import Scope
from privacy.wrapping import new_data_key, wrap_data_key
from schemas.batch import DEVICE_BATCH, batch_header, encode_batch
from schemas.codec import decode, encode, encode_event
from streams import metrics
from streams.activity import ActivityConfig
from streams.device_state import decode_state
from streams.output import OutputFailed
from streams.processor import (
    CAPTURE_CLEAN,
    CAPTURE_DLQ,
    SESSIONS,
    BatchProcessor,
    ReaderStopped,
    WorkerConfig,
)
from streams.router import RawMessage
from streams.session import SessionConfig
from tests.unit.privacy.privacy_events import ORG, PAYLOADS, SUBJECT, TUESDAY_10_UTC, make_event

MASTER = bytes(range(32))
S = 1_000_000
NOW = TUESDAY_10_UTC + 60 * S
ALL = frozenset(Scope)


def policy(subject: str = SUBJECT, scopes: frozenset[Scope] = ALL) -> ConsentPolicy:
    return ConsentPolicy(
        subject_id=subject,
        org_id=ORG,
        version=3,
        scopes=scopes,
        changed_by="admin",
        changed_at=TUESDAY_10_UTC - 10,
        reason=None,
    )


def keyset(*subjects: str) -> KeySet:
    records = []
    for subject in subjects:
        key = new_data_key()
        records.append(
            KeyRecord(subject, key.key_id, wrap_data_key(MASTER, subject, key), 1, False)
        )
    return KeySet(records, MASTER)


class FakeOutput:
    """Records sent records; `delivered` (of a checkpoint) and `flush` acknowledge
    them, or raise OutputFailed (dropping them, as a failed producer would)
    while `failing`."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, Any, bytes | None, Any]] = []
        self.acked: list[tuple[str, Any, bytes | None, Any]] = []
        self.failing = False
        self.flushes = 0

    def send(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        self.pending.append((topic, key, value, headers))

    def checkpoint(self) -> list[tuple[str, Any, bytes | None, Any]]:
        pending, self.pending = self.pending, []
        return pending

    async def delivered(
        self, delivery: list[tuple[str, Any, bytes | None, Any]], timeout: float = 60.0
    ) -> None:
        self.flushes += 1
        if self.failing:
            raise OutputFailed("broker said no")
        self.acked += delivery

    async def flush(self, timeout: float = 60.0) -> None:
        await self.delivered(self.checkpoint())

    def on(self, topic: str) -> list[tuple[str, Any, bytes | None, Any]]:
        return [r for r in self.acked if r[0] == topic]


class FakeConsent:
    def __init__(self, *policies: ConsentPolicy) -> None:
        self.policies = {p.subject_id: p for p in policies}
        self.alive = True

    def get(self, subject_id: str) -> ConsentPolicy | None:
        return self.policies.get(subject_id)

    def __len__(self) -> int:
        return len(self.policies)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def events(
    n: int, device: str = "dev-1", first_seq: int = 1, subject: str = SUBJECT
) -> list[dict[str, Any]]:
    kinds = sorted(PAYLOADS)
    return [
        make_event(
            kinds[i % len(kinds)],
            seq=first_seq + i,
            device_id=device,
            subject_id=subject,
            event_id=str(uuid.uuid4()),
            ts=TUESDAY_10_UTC + (first_seq + i) * 1000,
        )
        for i in range(n)
    ]


def batch_record(evs: list[dict[str, Any]], offset: int = 0, **header: Any) -> RawMessage:
    datum = {**batch_header(evs, batch_id=str(uuid.uuid4()), sent_ts=NOW), **header}
    value = (
        encode(DEVICE_BATCH, {**datum, "events": evs}, check_domains=False)
        if header
        else encode_batch(datum, evs)
    )
    return RawMessage(evs[0]["device_id"].encode(), value, "capture.events", 0, offset)


def single_record(event: dict[str, Any], offset: int = 0) -> RawMessage:
    return RawMessage(event["device_id"].encode(), encode_event(event), "capture.events", 0, offset)


class Harness:
    def __init__(
        self, cfg: WorkerConfig | None = None, subjects: tuple[str, ...] = (SUBJECT,)
    ) -> None:
        self.output = FakeOutput()
        self.table: dict[bytes, Any] = {}
        self.consent = FakeConsent(*(policy(s) for s in subjects))
        self.keys = keyset(*subjects)
        self.clock = Clock(NOW)
        self.processor = BatchProcessor(
            cfg or WorkerConfig(),
            output=self.output,
            table=self.table,
            consent=self.consent,
            keys=self.keys,
            clock=self.clock,
            topic=lambda name: f"t.{name}",
        )

    def process(self, *records: RawMessage) -> Any:
        return asyncio.run(self.processor.process(list(records)))

    def clean(self) -> list[dict[str, Any]]:
        """The clean events published so far, decrypted as a sink would."""
        out = []
        for _topic, _key, value, _headers in self.output.on(f"t.{CAPTURE_CLEAN}"):
            assert value is not None
            name, datum = decode(value)
            assert name == "CleanBatch"  # one per input record
            out += decrypt_record("CleanBatch", datum, self.keys)["events"]
        return out

    def clean_records(self) -> list[dict[str, Any]]:
        return [decode(v or b"")[1] for _t, _k, v, _h in self.output.on(f"t.{CAPTURE_CLEAN}")]


def test_a_batch_is_published_decryptable_and_stored_after_its_outputs_are_acked() -> None:
    h = Harness()
    evs = events(9)
    result = h.process(batch_record(evs))
    clean = h.clean()
    assert [e["event_id"] for e in clean] == [e["event_id"] for e in evs]
    assert [e["seq"] for e in clean] == list(range(1, 10))
    by_id = {e["event_id"]: e for e in clean}
    command = next(e for e in evs if e["payload"]["type"] == "TerminalCommand")
    assert by_id[command["event_id"]]["payload"]["command"] == "ls -la"  # content round trip
    assert by_id[command["event_id"]]["app"]["window_title"] == "consent.py - candor"
    assert result.outcomes == [False] * 9 and not h.output.on(f"t.{CAPTURE_DLQ}")
    assert decode_state(h.table[b"dev-1"]).seen.max_seq == 9
    assert h.output.flushes == 1
    [record] = h.clean_records()  # the batch is one record, its content sealed once
    assert (record["first_seq"], record["last_seq"], record["subject_id"]) == (1, 9, SUBJECT)


def test_the_records_routed_per_path_are_counted() -> None:
    from prometheus_client import REGISTRY

    def routed(path: str) -> float:
        return REGISTRY.get_sample_value("candor_worker_records_total", {"path": path}) or 0.0

    before = routed("batch"), routed("event")
    h = Harness()
    out_of_order = events(4, first_seq=20)
    out_of_order[1]["seq"], out_of_order[2]["seq"] = 22, 21
    h.process(
        batch_record(events(5)),
        single_record(events(1, first_seq=10)[0]),
        batch_record(out_of_order),
    )
    assert (routed("batch") - before[0], routed("event") - before[1]) == (1, 2)


def test_single_event_records_each_make_one_clean_record() -> None:
    h = Harness()
    evs = events(3)
    h.process(*[single_record(e, i) for i, e in enumerate(evs)])
    assert [r["batch_id"] for r in h.clean_records()] == [e["event_id"] for e in evs]
    assert [e["event_id"] for e in h.clean()] == [e["event_id"] for e in evs]


def test_batches_of_two_subjects_are_sealed_apart() -> None:
    other = "s2_subject"
    h = Harness(subjects=(SUBJECT, other))
    h.process(batch_record(events(4)), batch_record(events(4, device="dev-2", subject=other)))
    records = h.clean_records()
    assert [r["subject_id"] for r in records] == [SUBJECT, other]
    assert records[0]["key_id"] != records[1]["key_id"]


def test_content_leaves_encrypted() -> None:
    h = Harness()
    h.process(batch_record(events(9)))
    raw = b"".join(v or b"" for _t, _k, v, _h in h.output.on(f"t.{CAPTURE_CLEAN}"))
    assert b"ls -la" not in raw and b"consent.py - candor" not in raw


def test_outputs_not_acknowledged_store_nothing_and_the_retry_publishes_everything() -> None:
    h = Harness()
    evs = events(5)
    record = batch_record(evs)
    h.output.failing = True
    with pytest.raises(OutputFailed):
        h.process(record)
    assert h.table == {} and h.output.acked == []
    h.output.failing = False
    h.process(record)  # the same batch, as faust redelivers it
    assert [e["seq"] for e in h.clean()] == [1, 2, 3, 4, 5]  # not dropped as duplicates


def test_a_batch_read_again_after_it_was_stored_is_dropped_as_duplicates() -> None:
    h = Harness()
    record = batch_record(events(4))
    h.process(record)
    second = h.process(record)
    assert len(h.clean()) == 4
    assert second.drops["duplicate"] == 4


def test_a_restarted_processor_reads_its_states_from_the_table() -> None:
    h = Harness()
    h.process(batch_record(events(4)))
    again = BatchProcessor(
        WorkerConfig(),
        output=h.output,
        table=h.table,
        consent=h.consent,
        keys=h.keys,
        clock=h.clock,
    )
    result = asyncio.run(again.process([batch_record(events(6))]))  # seqs 1-4 seen, 5-6 new
    assert result.drops["duplicate"] == 4
    assert decode_state(h.table[b"dev-1"]).seen.max_seq == 6


def test_bad_input_goes_to_the_dead_letter_topic_and_the_limit_stops_the_worker() -> None:
    cfg = WorkerConfig(dlq_limit=DlqLimit(max_consecutive=3, min_observed=10**6))
    h = Harness(cfg)
    records = [RawMessage(b"dev-1", b"\x00garbage", "capture.events", 0, i) for i in range(3)]
    result = h.process(*records)
    assert [r[3][0] for r in h.output.on(f"t.{CAPTURE_DLQ}")] == [("reason", b"undecodable")] * 3
    with pytest.raises(DlqLimitExceeded):
        h.processor.observe_rejections(result)


def test_without_consent_nothing_is_published_but_the_seqs_are_recorded() -> None:
    h = Harness()
    h.consent.policies.clear()
    result = h.process(batch_record(events(3)))
    assert h.clean() == [] and result.drops["no_consent"] == 3


def test_the_timer_closes_a_quiet_device_once_the_gate_opens() -> None:
    session = SessionConfig(gap_micros=60 * S, grace_micros=5 * S)
    cfg = WorkerConfig(activity=ActivityConfig(session=session))
    h = Harness(cfg)
    h.process(*[single_record(e, i) for i, e in enumerate(events(3))])
    asyncio.run(h.processor.tick(rebalancing=False))
    assert h.output.on(f"t.{SESSIONS}") == []  # the gate: too soon after start
    h.clock.now = NOW + 3600 * S  # long quiet: all input stopped for > 3 periods
    asyncio.run(h.processor.tick(rebalancing=True))
    assert h.output.on(f"t.{SESSIONS}") == []  # never while the table is recovered
    asyncio.run(h.processor.tick(rebalancing=False))
    sessions = [decode(v or b"")[1] for _t, _k, v, _h in h.output.on(f"t.{SESSIONS}")]
    assert [(s["device_id"], s["end_reason"]) for s in sessions] == [("dev-1", "timer")]
    stored = decode_state(h.table[b"dev-1"]).session
    assert stored is not None and stored.open is None


def test_the_timer_refuses_to_go_on_without_the_consent_registry() -> None:
    h = Harness()
    h.consent.alive = False
    with pytest.raises(ReaderStopped):
        asyncio.run(h.processor.tick(rebalancing=False))


def test_timer_outputs_not_acknowledged_are_closed_again_next_tick() -> None:
    session = SessionConfig(gap_micros=60 * S, grace_micros=5 * S)
    h = Harness(WorkerConfig(activity=ActivityConfig(session=session)))
    h.process(*[single_record(e, i) for i, e in enumerate(events(3))])
    stored = dict(h.table)
    h.clock.now = NOW + 3600 * S
    h.output.failing = True
    asyncio.run(h.processor.tick(rebalancing=False))  # logged, not raised
    assert h.table == stored
    h.output.failing = False
    asyncio.run(h.processor.tick(rebalancing=False))
    assert len(h.output.on(f"t.{SESSIONS}")) == 1


def test_the_timer_closes_devices_whose_live_states_were_let_go() -> None:
    # The processor keeps live objects for its most recently used devices only
    # (streams.state_cache); the others' sessions are counted and closed all the same.
    session = SessionConfig(gap_micros=60 * S, grace_micros=5 * S)
    h = Harness(WorkerConfig(activity=ActivityConfig(session=session)))
    h.processor.cache.max_live = 1
    devices = ["dev-1", "dev-2", "dev-3"]
    spaced = {d: events(3, device=d) for d in devices}
    for evs in spaced.values():
        for i, e in enumerate(evs):  # beyond the grace: two fold into a session, one waits
            e["ts"] = TUESDAY_10_UTC + i * 10 * S
    h.process(*[batch_record(evs, i) for i, evs in enumerate(spaced.values())])
    assert len(h.processor.cache.live) == 1
    assert {decode_state(h.table[d.encode()]).seen.max_seq for d in devices} == {3}
    h.clock.now = NOW + 30 * S  # not quiet yet: nothing closes, three sessions open
    asyncio.run(h.processor.tick(rebalancing=False))
    assert h.output.on(f"t.{SESSIONS}") == []
    assert metrics.OPEN_SESSIONS._value.get() == 3
    h.clock.now = NOW + 3600 * S
    asyncio.run(h.processor.tick(rebalancing=False))
    sessions = [decode(v or b"")[1] for _t, _k, v, _h in h.output.on(f"t.{SESSIONS}")]
    assert sorted(s["device_id"] for s in sessions) == devices
    assert all(s["event_ids_count"] == 3 for s in sessions)  # each session: its three events
    assert metrics.OPEN_SESSIONS._value.get() == 0
    asyncio.run(h.processor.tick(rebalancing=False))
    assert len(h.output.on(f"t.{SESSIONS}")) == 3  # closed once


class GatedOutput(FakeOutput):
    """A FakeOutput whose deliveries wait until `release` (one at a time), as a
    broker acknowledging a batch's outputs while the next batch is routed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0
        self.checkpoints: list[int] = []  # records per checkpoint

    def checkpoint(self) -> list[tuple[str, Any, bytes | None, Any]]:
        delivery = super().checkpoint()
        self.checkpoints.append(len(delivery))
        return delivery

    async def delivered(
        self, delivery: list[tuple[str, Any, bytes | None, Any]], timeout: float = 60.0
    ) -> None:
        self.waiting += 1
        await self.gate.wait()
        self.waiting -= 1
        await super().delivered(delivery, timeout)


def gated() -> tuple[Harness, GatedOutput]:
    h = Harness()
    output = GatedOutput()
    h.output = output
    h.processor.output = output
    return h, output


def test_the_next_batch_is_routed_while_the_previous_one_commits() -> None:
    async def run() -> None:
        h, output = gated()
        durable: list[str] = []
        first = await h.processor.submit(
            [batch_record(events(4))], on_durable=lambda: durable.append("first")
        )
        await asyncio.sleep(0)
        assert first.outcomes == [False] * 4
        # routed and published, not yet acknowledged: nothing stored or acked
        assert output.waiting == 1 and h.table == {} and durable == []
        routing = asyncio.ensure_future(
            h.processor.submit(
                [batch_record(events(3, first_seq=5), offset=1)],
                on_durable=lambda: durable.append("second"),
            )
        )
        await asyncio.sleep(0)
        # the second batch is routed (its clean record sent) but waits for the first's commit
        assert not routing.done() and len(output.checkpoints) == 2 and durable == []
        output.gate.set()
        await routing
        await h.processor.drain()
        assert durable == ["first", "second"]
        assert decode_state(h.table[b"dev-1"]).seen.max_seq == 7
        assert [e["seq"] for e in h.clean()] == list(range(1, 8))

    asyncio.run(run())


def test_a_failed_commit_stores_nothing_acks_nothing_and_stops_the_next_batch() -> None:
    async def run() -> None:
        h, output = gated()
        failures: list[BaseException] = []
        h.processor.on_failure = failures.append
        fates: list[str] = []
        await h.processor.submit(
            [batch_record(events(4))],
            on_durable=lambda: fates.append("durable"),
            on_lost=lambda: fates.append("lost"),
        )
        second = asyncio.ensure_future(
            h.processor.submit([batch_record(events(3, first_seq=5), offset=1)])
        )
        await asyncio.sleep(0)
        output.failing = True
        output.gate.set()
        with pytest.raises(OutputFailed):
            await second  # the worker's agent crashes on it
        assert fates == ["lost"] and len(failures) == 1
        assert isinstance(failures[0], OutputFailed)
        assert h.table == {} and h.processor.cache.live == {}
        # the retry (after a restart, faust reads the batches again) publishes all of it
        output.failing = False
        await h.processor.process([batch_record(events(7))])
        assert sorted(e["seq"] for e in h.clean()) == list(range(1, 8))

    asyncio.run(run())


def test_a_tick_after_a_failed_commit_skips_and_leaves_the_failure_to_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        h, output = gated()
        await h.processor.submit([batch_record(events(4))])
        output.failing = True
        output.gate.set()
        with caplog.at_level("WARNING", logger="streams.processor"):
            await h.processor.tick(rebalancing=False)
        assert "the batch in flight was not stored" in caplog.text
        assert "timer outputs not acknowledged" not in caplog.text
        with pytest.raises(OutputFailed):  # the agent's next batch still hears of it
            await h.processor.submit([batch_record(events(3, first_seq=5), offset=1)])
        assert h.table == {}

    asyncio.run(run())


def test_the_timer_stores_after_the_batch_in_flight_commits() -> None:
    session = SessionConfig(gap_micros=60 * S, grace_micros=5 * S)
    h = Harness(WorkerConfig(activity=ActivityConfig(session=session)))
    output = GatedOutput()
    h.output = output
    h.processor.output = output

    async def run() -> None:
        await h.processor.submit([single_record(e, i) for i, e in enumerate(events(3))])
        h.clock.now = NOW + 3600 * S
        tick = asyncio.ensure_future(h.processor.tick(rebalancing=False))
        await asyncio.sleep(0)
        assert not tick.done() and h.table == {}  # waits for the batch's commit
        output.gate.set()
        await tick

    asyncio.run(run())
    # the timer's closed session is what stays stored, not the batch's older snapshot
    stored = decode_state(h.table[b"dev-1"]).session
    assert stored is not None and stored.open is None
    assert len(h.output.on(f"t.{SESSIONS}")) == 1


def test_a_device_let_go_while_its_batch_commits_is_read_back_from_that_batch() -> None:
    # Batch 2 is routed while batch 1's outputs are in flight (not in the table
    # yet); with room for one live state, dev-2 pushes dev-1's out in between.
    async def run() -> None:
        h, output = gated()
        h.processor.cache.max_live = 1
        await h.processor.submit([batch_record(events(4))])
        second = asyncio.ensure_future(
            h.processor.submit(
                [
                    batch_record(events(2, device="dev-2"), offset=1),
                    batch_record(events(3, first_seq=5), offset=2),
                ]
            )
        )
        await asyncio.sleep(0)
        assert h.table == {}  # batch 1 not committed
        output.gate.set()
        await second
        again = await h.processor.submit([batch_record(events(4), offset=3)])  # redelivered
        await h.processor.drain()
        assert again.drops["duplicate"] == 4
        assert decode_state(h.table[b"dev-1"]).seen.ranges == [[1, 7]]
        assert sorted(e["seq"] for e in h.clean() if e["device_id"] == "dev-1") == list(range(1, 8))

    asyncio.run(run())
