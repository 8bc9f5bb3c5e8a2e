"""kill -9 of each part while capture goes on: a stream worker, the sinks, the
gateway, the Kafka broker, ClickHouse — one at a time, each restarted as a
supervisor (systemd, Kubernetes) would. Afterwards every event acknowledged to
a capture client is in ClickHouse exactly once, no session is lost or
duplicated, the minute aggregates count every event once, and every action
the worker published is in ClickHouse once (a re-emitted one identical)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import replace
from privacy.consent import grant
from privacy.scope import Scope
from producers.gateway.auth import DeviceIdentity, TokenFile
from producers.sdk.client import CaptureClient
from producers.simulator.simulator import Simulator
from schemas.codec import decode
from sinks.migrate import migrate
from tests.harness import CandorProcess, TopicReader, free_port, scrape, wait_until
from tests.reliability.private_stack import PrivateStack

RATE = 150  # events/s through the SDK; the gateway adds batches of 20


def now_micros() -> int:
    return time.time_ns() // 1000


class Supervisor(threading.Thread):
    """Restarts pipeline processes that exit (as systemd/Kubernetes would) and counts it."""

    def __init__(self, procs: list[CandorProcess]) -> None:
        super().__init__(daemon=True)
        self.procs, self.restarts, self.stopping = procs, 0, threading.Event()
        self.paused: set[str] = set()

    def run(self) -> None:
        while not self.stopping.is_set():
            for p in self.procs:
                if p.name not in self.paused and not p.running:
                    self.restarts += 1
                    p.start()
            time.sleep(0.5)


def _post(url: str, token: str, events: list[dict[str, Any]]) -> int:
    req = urllib.request.Request(
        url + "/v1/events",
        method="POST",
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0  # gateway down: the client retries


def test_kill9_each_part_loses_and_duplicates_nothing(
    private_stack: PrivateStack, tmp_path: Path
) -> None:
    # Event time runs with the wall clock (as in real capture); the grace period
    # covers the reordering a broker crash causes in the SDK's in-flight records.
    s = replace(
        private_stack.settings,
        streams={"session_gap_s": 20, "grace_s": 15, "minute_quiet_s": 5, "timer_interval_s": 1},
    )
    create_topics(s)
    migrate(s)
    # The simulator decides what people do; the load stamps each event with the
    # wall-clock time it is captured at.
    sdk_sim = Simulator(8, seed=3, start_ts=now_micros(), org_id="org-rel")
    gw_sim = Simulator(1, seed=4, start_ts=now_micros(), org_id="org-rel")
    people = sdk_sim.devices + gw_sim.devices
    grant_many(
        s,
        [
            grant(
                None,
                [x.value for x in Scope],
                "reliability",
                now_micros(),
                subject_id=d.subject_id,
                org_id="org-rel",
            )
            for d in people
        ],
        "reliability",
    )
    gw_device = gw_sim.devices[0]
    tokens = tmp_path / "tokens.json"
    token = TokenFile(tokens).add(
        DeviceIdentity(gw_device.device_id, gw_device.subject_id, "org-rel")
    )
    gw_port = free_port()
    logs = tmp_path / "logs"
    worker_port = free_port()
    worker = CandorProcess("worker", ["worker", "--metrics-port", str(worker_port)], s, logs)
    sink = CandorProcess(
        "sink", ["sink", "--all", "--max-age", "0.5", "--metrics-port", "0"], s, logs
    )
    gateway = CandorProcess(
        "gateway", ["gateway", "--port", str(gw_port), "--token-file", str(tokens)], s, logs
    )
    procs = [worker, sink, gateway]
    for p in procs:
        p.start()
    supervisor = Supervisor(procs)
    supervisor.start()
    stop_load = threading.Event()
    sent_sdk: list[str] = []
    acked_gateway: list[str] = []
    left_in_spool: list[int] = []

    def sdk_load() -> None:
        first = sdk_sim.devices[0]
        with CaptureClient(
            s.kafka.bootstrap,
            spool_dir=tmp_path / "spool",
            org_id="org-rel",
            subject_id=first.subject_id,
            device_id=first.device_id,
            topic=s.kafka.topic("capture.events"),
            message_timeout_ms=5000,
        ) as client:
            for event in sdk_sim.events(365 * 86_400.0):
                if stop_load.is_set():
                    break
                event["ts"] = now_micros()
                client.publish(event)
                sent_sdk.append(event["event_id"])
                time.sleep(1 / RATE)
            left_in_spool.append(client.close(timeout=120))

    def gateway_load() -> None:
        batch: list[dict[str, Any]] = []
        for event in gw_sim.events(365 * 86_400.0):
            if stop_load.is_set():
                break
            event["ts"] = now_micros()
            batch.append(event)
            if len(batch) < 20:
                continue
            while _post(f"http://127.0.0.1:{gw_port}", token, batch) != 200:
                time.sleep(0.5)  # a real client retries the same batch (same event_ids)
            acked_gateway.extend(e["event_id"] for e in batch)
            batch = []
            time.sleep(0.2)

    loads = [threading.Thread(target=sdk_load), threading.Thread(target=gateway_load)]
    for t in loads:
        t.start()

    def kill_process(p: CandorProcess) -> Callable[[], None]:
        def kill() -> None:
            supervisor.paused.add(p.name)
            p.kill9()
            time.sleep(2)
            p.start()
            supervisor.paused.discard(p.name)

        return kill

    def kill_server(name: str) -> Callable[[], None]:
        def kill() -> None:
            private_stack.kill9(name)
            time.sleep(2)
            private_stack.run(name, "start")

        return kill

    steps = [
        ("worker", kill_process(worker)),
        ("sink", kill_process(sink)),
        ("gateway", kill_process(gateway)),
        ("kafka", kill_server("kafka")),
        ("clickhouse", kill_server("clickhouse")),
    ]

    def diag() -> str:
        try:
            samples = scrape(worker_port)
            seen = {
                k: v
                for k, v in samples.items()
                if k[0]
                in (
                    "candor_worker_open_sessions",
                    "candor_worker_events_in_total",
                    "candor_worker_events_out_total",
                    "candor_worker_drops_total",
                    "candor_worker_dead_letters_total",
                )
            }
        except OSError as err:
            seen = {("scrape failed", ()): str(err)}  # type: ignore[dict-item]
        return f"worker metrics: {seen}\n" + "\n".join(p.tail(25) for p in procs)

    try:
        time.sleep(8)
        for name, kill in steps:
            kill()
            print(f"killed -9 and restarted {name}")
            time.sleep(8)
        stop_load.set()
        for t in loads:
            t.join(180)
        assert left_in_spool == [0], "the SDK could not deliver its spool"
        acked = set(sent_sdk) | set(acked_gateway)
        ch = connect(s)

        def missing_diag() -> str:
            landed_now = {r[0] for r in ch.query("SELECT event_id FROM events").result_rows}
            missing = sorted(acked - landed_now)
            return (
                f"{len(missing)} of {len(acked)} acknowledged events missing "
                f"(first: {missing[:5]})\n{diag()}"
            )

        wait_until(
            lambda: (
                int(ch.query("SELECT uniqExact(event_id) FROM events").result_rows[0][0])
                >= len(acked)
            ),
            300,
            "every acknowledged event in ClickHouse",
            diag=missing_diag,
            interval=2,
        )
        landed = {r[0] for r in ch.query("SELECT event_id FROM events").result_rows}
        raw_rows = int(ch.query("SELECT count() FROM events").result_rows[0][0])
        final_rows = int(ch.query("SELECT count() FROM events FINAL").result_rows[0][0])
        assert acked <= landed, f"{len(acked - landed)} acknowledged events missing"
        assert landed == acked, f"{len(landed - acked)} events landed that nobody sent"
        assert final_rows == len(acked)

        # An event held back by an outage longer than the grace period may reach
        # the worker after the wall-clock timer closed its session: it is then in
        # the late side output (activity.late) instead of a session.
        late_reader = TopicReader(s, s.kafka.topic("activity.late"))
        late_session: set[str] = set()
        late_minutes: set[str] = set()

        def read_late() -> None:
            for m in late_reader.poll():
                late = decode(m.value())[1]
                (late_session if late["stage"] == "session" else late_minutes).add(late["event_id"])

        def sessions_cover_everything() -> bool:
            read_late()
            got = ch.query("SELECT sum(event_ids_count) FROM sessions FINAL").result_rows[0][0]
            return int(got or 0) + len(late_session) >= len(acked)

        def late_diag() -> str:
            got = ch.query("SELECT sum(event_ids_count) FROM sessions FINAL").result_rows[0][0]
            return (
                f"{got} events in sessions, {len(late_session)} late, "
                f"{len(acked)} acknowledged\n{diag()}"
            )

        # after the load stops, input is silent: sessions close 3 x (gap + grace) later
        wait_until(
            sessions_cover_everything,
            360,
            "every event in a closed session or late",
            diag=late_diag,
            interval=2,
        )
        in_sessions = int(
            ch.query("SELECT sum(event_ids_count) FROM sessions FINAL").result_rows[0][0]
        )
        conflicting = int(
            ch.query(
                "SELECT count() FROM (SELECT session_id FROM sessions GROUP BY session_id "
                "HAVING uniqExact(event_ids_count, end_ts) > 1)"
            ).result_rows[0][0]
        )
        overlapping = int(
            ch.query(
                "SELECT count() FROM (SELECT device_id, start_ts, end_ts, lagInFrame(end_ts) "
                "OVER (PARTITION BY device_id ORDER BY start_ts) AS prev_end "
                "FROM sessions FINAL) WHERE prev_end > start_ts AND prev_end != 0"
            ).result_rows[0][0]
        )
        print(
            f"acknowledged {len(acked)} events (SDK {len(sent_sdk)}, gateway "
            f"{len(acked_gateway)}); events rows {raw_rows} raw, {final_rows} final; "
            f"{in_sessions} events in sessions, {len(late_session)} late; "
            f"supervisor restarts {supervisor.restarts}"
        )
        assert late_session <= acked
        assert in_sessions + len(late_session) == len(acked)
        assert conflicting == 0 and overlapping == 0

        # Minutes: every event counted once, in a minute or as late for minutes;
        # a minute re-emitted after a crash replaced itself (migration 0005).
        def in_minutes() -> int:
            return int(ch.query("SELECT sum(events) FROM activity_minutes").result_rows[0][0] or 0)

        def minutes_cover_everything() -> bool:
            read_late()
            return in_minutes() + len(late_minutes) >= len(acked)

        wait_until(
            minutes_cover_everything,
            120,
            "every event in a minute or late",
            diag=lambda: (
                f"{in_minutes()} events in minutes, {len(late_minutes)} late, "
                f"{len(acked)} acknowledged\n{diag()}"
            ),
            interval=2,
        )
        late_reader.close()
        assert late_minutes <= acked
        assert in_minutes() + len(late_minutes) == len(acked)
        replayed_minutes = int(
            ch.query(
                "SELECT count() FROM (SELECT subject_id, device_id, window_start "
                "FROM activity_minutes_by_device GROUP BY subject_id, device_id, window_start "
                "HAVING uniqExact(keys, events, active_seconds) > 1)"
            ).result_rows[0][0]
        )
        assert replayed_minutes == 0, "a minute was re-emitted with other contents"

        # Actions: what the worker published (replays included) is in ClickHouse
        # once each, and a re-emitted action is identical.
        actions_reader = TopicReader(s, s.kafka.topic("training.actions"))
        published: dict[str, set[tuple[int, int]]] = {}

        def actions_landed() -> bool:
            for m in actions_reader.poll():
                a = decode(m.value())[1]
                published.setdefault(a["action_id"], set()).add((a["end_ts"], a["event_count"]))
            landed_ids = {r[0] for r in ch.query("SELECT action_id FROM actions").result_rows}
            return bool(published) and set(published) <= landed_ids

        wait_until(
            actions_landed, 120, "every published action in ClickHouse", diag=diag, interval=2
        )
        actions_reader.close()
        action_rows = ch.query("SELECT action_id FROM actions FINAL").result_rows
        assert sorted(r[0] for r in action_rows) == sorted(published)
        assert all(len(v) == 1 for v in published.values()), "an action re-emitted differently"
        print(
            f"{in_minutes()} events in minutes, {len(late_minutes)} late for minutes; "
            f"{len(published)} actions"
        )
    finally:
        stop_load.set()
        supervisor.stopping.set()
        for p in procs:
            p.stop()
