"""`candor demo`: the run command's visible end-to-end flow on the local stack.

Today: create the topics, publish events to `capture.events`, read them back
with a consumer group, land them in ClickHouse and print what analysts would
see. Each stage prints progress and its figures.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlparse

import clickhouse_connect
from confluent_kafka import Consumer, Producer

from candor import stack, topics
from candor.settings import Settings

APPS = ("code", "terminal", "browser", "chat")


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    print(f"\r  {label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
          end="" if done < total else "\n", flush=True)


def run(settings: Settings, events: int) -> int:
    """Run the demo; returns the process exit code (0 when every event landed)."""
    print("== Candor demo ==")
    for h in stack.status(settings):
        print(f"  {h.server:<11} {'up' if h.up else 'DOWN':<5} {h.endpoint}")
    print("== topics ==")
    for name, state in topics.create_topics(settings).items():
        print(f"  {name:<20} {state}")

    run_id = uuid.uuid4().hex[:8]
    print(f"== publish {events} events to capture.events (run {run_id}) ==")
    producer = Producer({**settings.kafka.client_config(), "enable.idempotence": True,
                         "acks": "all", "compression.type": "zstd", "linger.ms": 20})
    t0 = time.perf_counter()
    for i in range(events):
        device = f"dev-{i % 8}"
        body = {"run": run_id, "seq": i, "device_id": device, "app": APPS[i % len(APPS)],
                "ts": int(time.time() * 1e6)}
        producer.produce("capture.events", key=device, value=json.dumps(body).encode())
        producer.poll(0)
        if i % 2000 == 0 or i == events - 1:
            _progress("produced", i + 1, events)
    producer.flush(30)
    print(f"  {events / (time.perf_counter() - t0):,.0f} events/s")

    print("== consume and land in ClickHouse ==")
    u = urlparse(settings.clickhouse.url)
    ch = clickhouse_connect.get_client(host=u.hostname or "127.0.0.1", port=u.port or 8123)
    ch.command("CREATE DATABASE IF NOT EXISTS candor_demo")
    ch.command("""CREATE TABLE IF NOT EXISTS candor_demo.smoke (
        run String, seq UInt64, device_id String, app LowCardinality(String), ts DateTime64(6))
        ENGINE = MergeTree ORDER BY (run, device_id, seq)""")
    consumer = Consumer({**settings.kafka.client_config(), "group.id": f"candor-demo-{run_id}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["capture.events"])
    landed, deadline = 0, time.monotonic() + 120
    while landed < events and time.monotonic() < deadline:
        msgs = consumer.consume(5000, timeout=1.0)
        rows = []
        for m in msgs:
            value = m.value()
            if m.error() or value is None:
                continue
            try:
                b = json.loads(value)
            except ValueError:
                continue
            if isinstance(b, dict) and b.get("run") == run_id:
                rows.append([b["run"], b["seq"], b["device_id"], b["app"],
                             datetime.fromtimestamp(b["ts"] / 1e6, tz=UTC)])
        if rows:
            ch.insert("candor_demo.smoke", rows,
                      column_names=["run", "seq", "device_id", "app", "ts"])
            landed += len(rows)
            _progress("landed", min(landed, events), events)
        if msgs:
            consumer.commit(asynchronous=False)
    consumer.close()

    print("== query ClickHouse ==")
    result = ch.query("SELECT app, count() AS events, uniqExact(device_id) AS devices "
                      "FROM candor_demo.smoke WHERE run = {r:String} GROUP BY app ORDER BY app",
                      parameters={"r": run_id})
    print(f"  {'app':<10} {'events':>8} {'devices':>8}")
    for app, n, d in result.result_rows:
        print(f"  {app:<10} {n:>8} {d:>8}")
    total = sum(r[1] for r in result.result_rows)
    print(f"== {total}/{events} events landed ==")
    return 0 if total == events else 1
