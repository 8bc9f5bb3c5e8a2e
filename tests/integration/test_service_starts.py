"""`candor sink --all` and `candor worker` started against a broker that was
formatted a moment ago, as a new user's first demo starts them: no crash, the
events land exactly, both exit 0 on SIGTERM.

A new broker answers its first group requests with NOT_COORDINATOR; through an
admin client's ListConsumerGroupOffsets that made librdkafka 2.16 dereference
a NULL consumer group and kill the sink with SIGSEGV (`backends/kafka/lag.py`). The
20-start loop is `python -m tests.integration.service_starts --starts 20`;
here two starts keep CI's time in bounds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Producer

from backends.clickhouse.connection import connect
from backends.kafka.topics import TopicSpec, create_topics
from candor.demo import describe_exit, log_tail
from candor.settings import REPO_ROOT, Settings, child_env, replace
from schemas import codec
from sinks.migrate import migrate
from tests.harness import free_port
from tests.integration.service_starts import FreshBroker, Service, one_start
from tests.unit.sinks.sinks_samples import event

STARTS = 2


def test_lag_probes_survive_a_new_brokers_first_seconds(tmp_path: Path) -> None:
    """Seven probes (one per sink) measuring from the broker's first second.
    Through the admin client's group offsets this crashed every time tried."""
    broker = FreshBroker(tmp_path / "home", free_port(), free_port())
    broker.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.integration.lag_hammer", broker.bootstrap, "10"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        broker.stop()
    said = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
    assert proc.returncode == 0, f"{describe_exit(proc.returncode)}\n{said}"
    assert "measured" in proc.stdout, said


def test_services_start_on_a_fresh_broker_without_crashing(
    settings: Settings, unique: str, tmp_path: Path
) -> None:
    broker = FreshBroker(tmp_path / "home", free_port(), free_port())
    results = []
    try:
        for i in range(1, STARTS + 1):
            results.append(
                one_start(
                    i,
                    broker,
                    settings.clickhouse.url,
                    f"starts_{unique}_{i}",
                    tmp_path / "runs",
                    events=1500,
                )
            )
    finally:
        for i in range(1, STARTS + 1):
            connect(settings, database="").command(f"DROP DATABASE IF EXISTS starts_{unique}_{i}")
    report = "\n".join([r.line() for r in results] + [bt for r in results for bt in r.backtraces])
    assert not any(r.crashed for r in results), report
    assert all(r.ok for r in results), report


def test_a_sink_that_cannot_go_on_exits_non_zero_with_a_clear_last_line(
    settings: Settings, unique: str, tmp_path: Path
) -> None:
    """Its table gone, the sink stops (offsets uncommitted), says why last, exits 1."""
    own = replace(settings, clickhouse={"database": f"fatal_{unique}"}, home=tmp_path)
    migrate(own)
    topic = f"it.fatal.clean.{unique}"
    create_topics(own, [TopicSpec(topic, "device_id", "delete", 1)])
    sink = Service(
        "sink",
        ["sink", "--topic", topic, "--table", "events", "--metrics-port", "0"],
        child_env(own, dict(os.environ)),
        tmp_path / "run",
    )
    try:
        client = connect(own)
        client.command("DROP TABLE events")
        producer = Producer(own.kafka.client_config())
        producer.produce(topic, key=b"d1", value=codec.encode_event(event(device="d1")))
        assert producer.flush(30) == 0
        sink.proc.wait(120)
    finally:
        code = sink.stop()
        connect(own, database="").command(f"DROP DATABASE IF EXISTS {own.clickhouse.database}")
    last = log_tail(sink.log, 1)
    assert code == 1, "\n".join(log_tail(sink.log, 30))
    assert last and "ERROR candor.sinks_cli: sink stopped: FatalSinkError" in last[0], last
    assert "events" in last[0], last
