"""Producer throughput: CaptureClient vs a bare confluent-kafka loop, and the HTTP gateway.

    .venv/bin/python bench/produce.py [--events 200000] [--requests 2000] [--batch 100]

Prints, in one run against the Kafka of the settings (or --bootstrap):

* bare loop: `Producer.produce` of pre-encoded bytes with the SDK's producer
  settings (idempotent, acks=all, zstd), `poll(0)` per record, then `flush`;
* CaptureClient.publish of the same events, Avro encoding included;
* CaptureClient.publish with encoding taken out (the SDK's own overhead);
* the gateway (a subprocess) under a loopback aiohttp load generator posting
  JSON batches of --batch events with --concurrency requests in flight.

Each figure counts until every record is acknowledged (flush). Topics are
created per run (bench.produce.<random>) and left for retention to delete.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from environment import REPO, free_port

from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import load_settings, replace
from producers.sdk.client import CaptureClient
from producers.sdk.envelope import Event
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import Simulator
from schemas.codec import encode_event


def _events(count: int) -> list[Event]:
    simulator = Simulator(people=50, seed=3, start_ts=1_760_000_000_000_000)
    return list(itertools.islice(simulator.events(30 * 86_400.0), count))


def _figure(name: str, events: int, nbytes: int, seconds: float) -> dict[str, Any]:
    return {
        "name": name,
        "events_per_s": events / seconds,
        "mb_per_s": nbytes / seconds / 1e6,
        "seconds": seconds,
    }


def bare_loop(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Produce pre-encoded records as fast as librdkafka takes them."""
    producer = Producer(dict(producer_config(bootstrap, client_id="bench-bare")))
    delivered = [0]

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            delivered[0] += 1

    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    seconds = time.perf_counter() - started
    assert delivered[0] == len(records), f"bare loop delivered {delivered[0]}"
    return _figure(
        "bare confluent-kafka loop (pre-encoded)",
        len(records),
        sum(len(v) for _, v in records),
        seconds,
    )


def capture_client(
    bootstrap: str,
    topic: str,
    events: list[Event],
    nbytes: int,
    encoder: Callable[[Mapping[str, Any]], bytes] | None,
    name: str,
) -> dict[str, Any]:
    """CaptureClient.publish of `events`, then flush."""
    with tempfile.TemporaryDirectory() as spool:
        client = CaptureClient(
            bootstrap,
            spool_dir=Path(spool),
            org_id="org-sim",
            subject_id="bench",
            device_id="bench",
            topic=topic,
            spool_fsync="never",
            encoder=encoder,
        )
        started = time.perf_counter()
        publish = client.publish
        for event in events:
            publish(event)
        left = client.flush(120)
        seconds = time.perf_counter() - started
        client.close()
    assert left == 0, f"{left} events undelivered"
    return _figure(name, len(events), nbytes, seconds)


async def _load(url: str, token: str, bodies: list[bytes], concurrency: int) -> list[int]:
    import aiohttp

    statuses: list[int] = []
    queue = iter(bodies)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def gateway(
    bootstrap: str, topic: str, requests: int, batch: int, concurrency: int
) -> dict[str, Any]:
    """Requests/s and events/s of a gateway subprocess on loopback."""
    from producers.gateway.auth import DeviceIdentity, TokenFile

    with tempfile.TemporaryDirectory() as home:
        token_file = Path(home) / "tokens.json"
        token = TokenFile(token_file).add(DeviceIdentity("bench-dev", "bench-sub", "org-b"))
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "candor.gateway_cli",
                "gateway",
                "--port",
                str(port),
                "--token-file",
                str(token_file),
                "--topic",
                topic,
                "--rate",
                "1e9",
                "--burst",
                "1e9",
            ],
            cwd=REPO,
            env={**os.environ, "CANDOR_KAFKA_BOOTSTRAP": bootstrap},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(port)
            bodies = [_json_batch(batch, n * batch) for n in range(requests)]
            nbytes = sum(len(b) for b in bodies)
            url = f"http://127.0.0.1:{port}/v1/events"
            started = time.perf_counter()
            statuses = asyncio.run(_load(url, token, bodies, concurrency))
            seconds = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert statuses.count(200) == requests, f"statuses: {set(statuses)}"
    figure = _figure(
        f"gateway JSON batch {batch}, {concurrency} in flight", requests * batch, nbytes, seconds
    )
    figure["requests_per_s"] = requests / seconds
    return figure


def _json_batch(size: int, first_seq: int) -> bytes:
    events: list[dict[str, Any]] = [
        {
            "event_id": str(uuid.uuid4()),
            "org_id": "org-b",
            "subject_id": "bench-sub",
            "device_id": "bench-dev",
            "seq": first_seq + i,
            "ts": 1_760_000_000_000_000 + i,
            "received_ts": None,
            "app": {"app_name": "code", "window_title": "x.py", "url_host": None},
            "payload": {
                "type": "KeyInput",
                "key": None,
                "text": "def f():",
                "modifiers": [],
                "is_secure_field": False,
                "count": 8,
            },
            "redactions": [],
            "consent_version": None,
        }
        for i in range(size)
    ]
    return json.dumps({"events": events}).encode()


def _wait_healthy(port: int) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("gateway did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--runs", type=int, default=1, help="repeat and print medians")
    parser.add_argument("--skip-gateway", action="store_true")
    args = parser.parse_args()
    settings = replace(load_settings(), kafka={"partitions": args.partitions})
    if args.bootstrap:
        settings = replace(settings, kafka={"bootstrap": args.bootstrap})
    bootstrap = settings.kafka.bootstrap

    events = _events(args.events)
    encoded = [encode_event(event) for event in events]
    records = [(str(e["device_id"]).encode(), v) for e, v in zip(events, encoded, strict=True)]
    nbytes = sum(len(v) for v in encoded)
    by_id = {e["event_id"]: v for e, v in zip(events, encoded, strict=True)}

    def pre_encoded(event: Mapping[str, Any]) -> bytes:
        return by_id[event["event_id"]]

    rows: dict[str, list[dict[str, Any]]] = {}
    for run in range(args.runs):
        topic = f"bench.produce.{uuid.uuid4().hex[:8]}"
        create_topics(settings, [TopicSpec(topic, "device_id", "delete", 1)])
        results = [
            bare_loop(bootstrap, topic, records),
            capture_client(
                bootstrap,
                topic,
                events,
                nbytes,
                None,
                "CaptureClient.publish (Avro encode included)",
            ),
            capture_client(
                bootstrap, topic, events, nbytes, pre_encoded, "CaptureClient.publish (pre-encoded)"
            ),
        ]
        if not args.skip_gateway:
            results.append(gateway(bootstrap, topic, args.requests, args.batch, args.concurrency))
        for result in results:
            rows.setdefault(result["name"], []).append(result)
        print(
            f"run {run + 1}: "
            + ", ".join(f"{r['name'].split(' (')[0]} {r['events_per_s']:,.0f}/s" for r in results),
            file=sys.stderr,
        )

    bare = statistics.median(r["events_per_s"] for r in rows[next(iter(rows))])
    print(
        f"{args.events} events, {nbytes / len(encoded):.0f} B/event avg, "
        f"medians of {args.runs} run(s), Kafka {bootstrap}"
    )
    print(f"{'what':<48} {'events/s':>12} {'MB/s':>8} {'vs bare':>8} {'req/s':>8}")
    for name, results in rows.items():
        eps = statistics.median(r["events_per_s"] for r in results)
        mbs = statistics.median(r["mb_per_s"] for r in results)
        rps = [r["requests_per_s"] for r in results if "requests_per_s" in r]
        req = f"{statistics.median(rps):8,.0f}" if rps else f"{'':>8}"
        print(f"{name:<48} {eps:12,.0f} {mbs:8.1f} {eps / bare:8.2f} {req}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
