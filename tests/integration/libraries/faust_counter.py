"""A minimal Faust app for the foundation test: count messages per key in a Table.

Run as `python -m tests.integration.libraries.faust_counter BOOTSTRAP TOPIC APP_ID DATADIR`.
The table lives in memory only, so after a restart its contents can only come
back from the changelog topic. Each table value remembers the last source
offset folded in, so a record redelivered after a restart is not counted twice.
"""

from __future__ import annotations

import sys
from typing import Any

import faust


def build(bootstrap: str, topic: str, app_id: str, datadir: str) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=datadir,
        web_enabled=False,
        topic_partitions=4,
        topic_replication_factor=1,
        broker_commit_every=100,
        broker_commit_interval=0.5,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(
        topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=4,
    )
    # No value_type: faust treats a value_type as a Record model (dict has no
    # from_data and recovery fails); plain JSON values need none.
    counts = app.Table("counts", default=None, partitions=4)

    @app.agent(source)
    async def count(stream: Any) -> None:
        async for event in stream.events():
            key = event.key.decode()
            offset = event.message.offset
            current = counts.get(key) or {"n": 0, "offset": -1}
            if offset <= current["offset"]:
                continue  # redelivered after a restart: already counted
            counts[key] = {"n": current["n"] + 1, "offset": offset}

    return app


if __name__ == "__main__":
    bootstrap, topic, app_id, datadir = sys.argv[1:5]
    application = build(bootstrap, topic, app_id, datadir)
    sys.argv = [sys.argv[0], "worker", "-l", "info"]
    application.main()
