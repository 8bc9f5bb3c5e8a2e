"""A capture process for the kill -9 test (run with ``python -m``).

``spool <bootstrap> <topic> <spool_dir> <n> <ids_file>``: capture `n` events
while the broker is down, wait until all of them are in the spool (every
batch on disk, none open or in flight), write their event_ids to `ids_file`,
print "SPOOLED" and wait to be killed.
``drain <bootstrap> <topic> <spool_dir>``: open the same spool, deliver it,
print what is left and exit 0 when nothing is.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from producers.sdk.client import CaptureClient

APP = {"app_name": "xterm", "window_title": None, "url_host": None}


def _client(bootstrap: str, topic: str, spool_dir: str) -> CaptureClient:
    return CaptureClient(
        bootstrap,
        spool_dir=Path(spool_dir),
        org_id="org-k",
        subject_id="subject-k",
        device_id="device-k",
        topic=topic,
        message_timeout_ms=1500,
        retry_backoff_s=0.5,
    )


def spool(bootstrap: str, topic: str, spool_dir: str, n: int, ids_file: str) -> None:
    client = _client(bootstrap, topic, spool_dir)
    ids = [client.capture({"type": "Scroll", "dx": 1, "dy": i}, APP) for i in range(n)]
    deadline = time.monotonic() + 60
    while (client.open_events or client.spool_depth < client.pending) and (
        time.monotonic() < deadline
    ):
        client.poll(0.1)
    Path(ids_file).write_text(json.dumps(ids))
    on_disk = client.spool_depth > 0 and client.spool_depth == client.pending
    print("SPOOLED" if on_disk else f"ONLY {client.spool_depth} of {client.pending}", flush=True)
    while True:  # killed -9 here, with everything in the spool
        time.sleep(1)


def drain(bootstrap: str, topic: str, spool_dir: str) -> int:
    with _client(bootstrap, topic, spool_dir) as client:
        depth = client.spool_depth
        left = client.flush(90)
        print(f"recovered {depth} left {left}", flush=True)
        return 0 if left == 0 and depth > 0 else 1


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "spool":
        spool(rest[0], rest[1], rest[2], int(rest[3]), rest[4])
    sys.exit(drain(rest[0], rest[1], rest[2]))
