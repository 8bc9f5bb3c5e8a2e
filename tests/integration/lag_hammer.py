"""Measure consumer lag as `candor sink --all` does, from a broker's first second.

    python -m tests.integration.lag_hammer BOOTSTRAP SECONDS

Waits until the broker answers, creates seven topics, then runs
`LagProbe.measure` in seven threads (one probe per sink) for SECONDS. Prints
``measured N, unavailable M`` and exits 0 when the process survived. Run in a
child process: a crash inside librdkafka kills the process (exit status -11),
which is what the caller looks for.
"""

from __future__ import annotations

import sys
import threading
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from backends.kafka.lag import LagProbe, LagUnavailable

PROBES = 7


def main(argv: list[str]) -> int:
    bootstrap, seconds = argv[0], float(argv[1])
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap}
    admin = AdminClient(config)
    deadline = time.monotonic() + 60
    while True:
        try:
            admin.list_topics(timeout=1)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    names = [f"lag.hammer.{i}" for i in range(PROBES)]
    for future in admin.create_topics([NewTopic(n, 12, 1) for n in names]).values():
        future.result(30)
    counts = {"measured": 0, "unavailable": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(topic: str) -> None:
        probe = LagProbe.create(config, f"candor-sink-{topic}", [topic])
        try:
            while time.monotonic() < stop:
                try:
                    probe.measure()
                    key = "measured"
                except LagUnavailable:
                    key = "unavailable"
                with lock:
                    counts[key] += 1
        finally:
            probe.close()

    threads = [threading.Thread(target=loop, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"measured {counts['measured']}, unavailable {counts['unavailable']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
