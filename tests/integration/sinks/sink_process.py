"""A sink in its own process, for the kill -9 test.

Usage: python sink_process.py TOPIC TABLE GROUP DLQ_TOPIC MARKER_FILE
Environment: CANDOR_CLICKHOUSE__DATABASE, CANDOR_KAFKA_BOOTSTRAP, CANDOR_CLICKHOUSE_URL.
After the first insert it writes MARKER_FILE and sleeps before committing, so
the test can SIGKILL it between the insert and the commit.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Message

from candor.settings import load_settings
from privacy.content_keys import keep_content
from sinks.batching import Batch
from sinks.consumer import SinkOptions, run_sink


def main() -> int:
    topic, table, group, dlq, marker = sys.argv[1:6]

    def pause(batch: Batch[Message]) -> None:
        Path(marker).write_text(f"{batch.token} {len(batch.items)}\n")
        time.sleep(3600)  # killed here, before the commit

    options = SinkOptions(
        decrypt=keep_content,
        group=group,
        dlq_topic=dlq,
        max_rows=10_000,
        max_age=2.0,
        after_insert=pause,
    )
    run_sink(load_settings(), topic, table, threading.Event(), options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
