"""A real Prometheus scrapes a running pipeline (worker, sinks, canary) and its
series say what was sent: consent drops, dead letters, redactions, rows landed,
end-to-end lag, consumer lag per partition and the canary's age — and the
canary's age grows when the sink stops.

Every test has its own topic prefix, ClickHouse database, metrics ports and
Prometheus (see conftest.py); run with ``CANDOR_TEST_KEEP_STACK=1``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import publish
from backends.kafka.lag import LagProbe, observe_worker_lag
from backends.kafka.topics import create_topics
from candor.canary import CanaryIdentity, grant_canary_consent
from candor.settings import Settings, replace
from privacy.consent import grant
from schemas.codec import encode_event
from sinks.migrate import migrate
from tests.harness import REPO, CandorProcess, free_port, wait_until
from tests.integration.observability.private_prometheus import PrivatePrometheus

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CONSENTED = [f"obs-subject-{i}" for i in range(6)]
UNCONSENTED = "obs-subject-none"
CLEAN, NO_CONSENT, GARBAGE, EMAILS = 300, 40, 5, 20
DASHBOARD = REPO / "deploy" / "grafana" / "candor-pipeline.json"
SCOPES = [
    "activity_metadata",
    "keystroke_content",
    "screen_frames",
    "ide_content",
    "terminal_content",
    "training_use",
    "analytics",
]


def now_micros() -> int:
    return time.time_ns() // 1000


def make_event(i: int, subject: str, device: str, seq: int, ts: int) -> dict[str, Any]:
    if i % (CLEAN // EMAILS) == 0:
        # a field redacted per event (typed text is redacted per typing action, merged)
        payload: dict[str, Any] = {
            "type": "TerminalCommand",
            "command": "mail jane.doe@example.com < notes.md",
            "exit_code": 0,
            "cwd_hash": "ab" * 8,
        }
    elif i % 3 == 0:
        payload = {"type": "MouseClick", "button": "left", "x": 10, "y": 20, "double": False}
    else:
        payload = {
            "type": "KeyInput",
            "key": "a",
            "text": None,
            "modifiers": [],
            "is_secure_field": False,
            "count": 1,
        }
    return {
        "event_id": str(uuid.uuid4()),
        "org_id": "org-obs",
        "subject_id": subject,
        "device_id": device,
        "seq": seq,
        "ts": ts,
        "received_ts": ts,
        "app": {"app_name": "code", "window_title": "notes.md", "url_host": None},
        "payload": payload,
        "redactions": [],
        "consent_version": None,
    }


@pytest.fixture
def obs_settings(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = replace(
        settings,
        home=tmp_path / "home",
        kafka={"topic_prefix": f"obs-{unique}.", "partitions": 4},
        clickhouse={"database": f"candor_obs_{unique}"},
        streams={
            "session_gap_s": 20,
            "grace_s": 2,
            "minute_quiet_s": 5,
            "action_quiet_s": 2,
            "timer_interval_s": 1,
            "batch_within_s": 0.2,
        },
    )
    create_topics(s)
    migrate(s)
    yield s
    connect(s, database="").command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")
    admin = AdminClient(s.kafka.client_config())
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(s.kafka.topic_prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result(60)


class Pipeline:
    """worker + sink --all + canary of one test, each with its own metrics port."""

    def __init__(self, settings: Settings, logs: Path, unique: str) -> None:
        self.settings = settings
        self.ports = {
            "candor-worker": free_port(),
            "candor-sink": free_port(),
            "candor-canary": free_port(),
        }
        self.canary_device = f"canary-{unique}"
        # a Faust app id is its consumer group and names its changelog topics: under
        # the prefix, so the fixture deletes them with the rest
        self.worker_group = f"{settings.kafka.topic_prefix}worker"
        self.worker = CandorProcess(
            "worker",
            [
                "worker",
                "--metrics-port",
                str(self.ports["candor-worker"]),
                "--app-id",
                self.worker_group,
            ],
            settings,
            logs,
        )
        self.sink = CandorProcess(
            "sink",
            ["sink", "--all", "--max-age", "0.3", "--metrics-port", str(self.ports["candor-sink"])],
            settings,
            logs,
        )
        self.canary = CandorProcess("canary", [], settings, logs)
        # until `candor canary` is wired into candor.cli, run the module's own entry point
        self.canary.args = [
            sys.executable,
            "-m",
            "candor.canary",
            "canary",
            "--interval",
            "1",
            "--device",
            self.canary_device,
            "--metrics-port",
            str(self.ports["candor-canary"]),
        ]
        self.processes = [self.worker, self.sink, self.canary]

    def alive(self) -> bool:
        return all(p.running for p in self.processes if p.proc is not None)

    def diag(self) -> str:
        return "\n".join(p.tail(15) for p in self.processes)

    def stop(self) -> None:
        for p in self.processes:
            p.stop()


@pytest.fixture
def pipeline(obs_settings: Settings, tmp_path: Path, unique: str) -> Iterator[Pipeline]:
    p = Pipeline(obs_settings, tmp_path / "logs", unique)
    try:
        yield p
    finally:
        p.stop()


def send_inputs(settings: Settings) -> None:
    """CLEAN consented events, NO_CONSENT of a subject without consent, GARBAGE bytes."""
    producer = Producer({**settings.kafka.client_config(), "acks": "all"})
    topic = settings.kafka.topic("capture.events")
    ts = now_micros() - 3 * 1_000_000  # the last one about now: end-to-end lag is transit
    for i in range(CLEAN):
        subject = CONSENTED[i % len(CONSENTED)]
        device = f"dev-{subject}"
        e = make_event(i, subject, device, i, ts + i * 10_000)
        producer.produce(topic, key=device, value=encode_event(e))
    for i in range(NO_CONSENT):
        e = make_event(i + 1, UNCONSENTED, "dev-none", i, ts + i * 10_000)
        producer.produce(topic, key="dev-none", value=encode_event(e))
    for i in range(GARBAGE):
        producer.produce(topic, key="dev-bad", value=b"\x00not avro " + bytes([i]))
    assert producer.flush(30) == 0


def start_pipeline(
    p: Pipeline,
    prometheus: Callable[[dict[str, list[int]]], PrivatePrometheus],
) -> PrivatePrometheus:
    s = p.settings
    publish(
        s,
        [
            grant(None, SCOPES, "obs-test", now_micros(), subject_id=sub, org_id="org-obs")
            for sub in CONSENTED
        ],
    )
    # granted before the worker loads the registry, so no heartbeat is dropped for consent
    grant_canary_consent(s, CanaryIdentity(device_id=p.canary_device))
    for proc in p.processes:
        proc.start()
    prom = prometheus({job: [port] for job, port in p.ports.items()})
    wait_until(
        lambda: prom.value('count(up{job=~"candor-.*"} == 1)') == 3,
        60,
        "all three targets up",
        alive=p.alive,
        diag=p.diag,
    )
    return prom


def settle(
    prom: PrivatePrometheus, p: Pipeline, expr: str, expected: float, timeout: float = 120
) -> None:
    """Wait until `expr` evaluates to `expected` in Prometheus."""
    last: list[float | None] = [None]

    def check() -> bool:
        last[0] = prom.value(expr)
        return last[0] == expected

    wait_until(
        check,
        timeout,
        f"{expr} == {expected}",
        alive=p.alive,
        diag=lambda: f"last value {last[0]}\n{p.diag()}",
    )


def test_prometheus_series_match_what_was_sent(
    pipeline: Pipeline,
    prometheus: Callable[[dict[str, list[int]]], PrivatePrometheus],
) -> None:
    prom = start_pipeline(pipeline, prometheus)
    send_inputs(pipeline.settings)
    t = pipeline.settings.kafka.topic
    beats = "sum(candor_canary_heartbeats_sent_total)"

    settle(prom, pipeline, 'sum(candor_worker_drops_total{reason="no_consent"})', NO_CONSENT)
    settle(prom, pipeline, "sum(candor_worker_dead_letters_total)", GARBAGE)
    settle(prom, pipeline, 'sum(candor_worker_redactions_total{rule="email"})', EMAILS)
    # every input was read, the canary's heartbeats included
    settle(
        prom,
        pipeline,
        f'sum(candor_worker_events_in_total{{topic="{t("capture.events")}"}}) - {beats}',
        CLEAN + NO_CONSENT + GARBAGE,
    )
    # every consented event landed in ClickHouse once, next to the canary's
    settle(prom, pipeline, f'sum(candor_sink_rows_total{{table="events"}}) - {beats}', CLEAN)
    landed = (
        connect(pipeline.settings)
        .query("SELECT count() FROM events WHERE org_id = 'org-obs'")
        .result_rows[0][0]
    )
    assert landed == CLEAN
    # one end-to-end lag observation per landed event, all well under a minute
    settle(
        prom,
        pipeline,
        "sum(candor_sink_end_to_end_lag_seconds_count)"
        ' - sum(candor_sink_rows_total{table="events"})',
        0,
    )
    p99 = prom.value(
        "histogram_quantile(0.99, sum by (le) "
        "(rate(candor_sink_end_to_end_lag_seconds_bucket[1m])))"
    )
    assert p99 is not None and 0 < p99 < 60
    # consumer lag: a series per partition of every sink topic, caught up
    parts = prom.query(f'candor_sink_consumer_lag_records{{topic="{t("capture.clean")}"}}')
    assert sorted(r["metric"]["partition"] for r in parts) == ["0", "1", "2", "3"]
    assert (
        prom.value(
            f"count(count by (topic) (candor_sink_consumer_lag_records"
            f'{{topic=~"{pipeline.settings.kafka.topic_prefix}.*"}}))'
        )
        == 6
    )
    settle(
        prom, pipeline, f'sum(candor_sink_consumer_lag_records{{topic="{t("capture.clean")}"}})', 0
    )
    # the canary is fresh, and its transit time is known
    wait_until(
        lambda: (prom.value("candor_canary_age_seconds") or 99) < 10,
        60,
        "a fresh canary",
        alive=pipeline.alive,
        diag=pipeline.diag,
    )
    transit = prom.value("candor_canary_transit_seconds")
    assert transit is not None and 0 < transit < 10
    # the rules are loaded and none of the pipeline alerts fires
    rules = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
    assert {
        "CandorCanaryStale",
        "CandorConsumerLagGrowing",
        "CandorDlqRatioHigh",
        "CandorSinkFailing",
        "CandorSpoolGrowing",
    } <= set(rules)
    assert rules["CandorCanaryStale"]["state"] == "inactive"
    # the worker group's lag as the worker's timer will measure it (backends/kafka/lag.py):
    # one value per input partition, and nothing left once the worker committed
    probe = LagProbe.create(
        pipeline.settings.kafka.client_config(), pipeline.worker_group, [t("capture.events")]
    )
    lags: dict[tuple[str, int], int] = {}

    def worker_caught_up() -> bool:
        lags.update(asyncio.run(observe_worker_lag(probe)))
        return len(lags) == 4 and sum(lags.values()) == 0

    wait_until(
        worker_caught_up,
        60,
        "the worker group's lag to reach 0",
        alive=pipeline.alive,
        diag=lambda: f"{lags}\n{pipeline.diag()}",
    )
    # every dashboard query is valid PromQL for this Prometheus
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            prom.query(target["expr"].replace("$__rate_interval", "1m"))


def test_canary_age_grows_when_the_sink_stops(
    pipeline: Pipeline,
    prometheus: Callable[[dict[str, list[int]]], PrivatePrometheus],
) -> None:
    prom = start_pipeline(pipeline, prometheus)
    wait_until(
        lambda: (prom.value("candor_canary_transit_seconds") or 0) > 0,
        90,
        "a first canary heartbeat in ClickHouse",
        alive=pipeline.alive,
        diag=pipeline.diag,
    )
    pipeline.sink.stop()
    pipeline.processes.remove(pipeline.sink)  # its absence is the point now
    sent_before = prom.value("sum(candor_canary_heartbeats_sent_total)") or 0
    wait_until(
        lambda: (prom.value("candor_canary_age_seconds") or 0) > 8,
        60,
        "the canary's age to grow past 8 s",
        alive=pipeline.alive,
        diag=pipeline.diag,
    )
    # heartbeats are still being sent: it is the pipeline that stalls, not the canary
    assert (prom.value("sum(candor_canary_heartbeats_sent_total)") or 0) > sent_before
