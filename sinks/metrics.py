"""The sink's Prometheus metrics, each defined once, here."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCH_ROWS = Histogram(
    "candor_sink_batch_rows",
    "Rows per batch inserted into ClickHouse (one batch = one partition's range of offsets).",
    ["table"],
    buckets=(1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000),
)
INSERT_SECONDS = Histogram(
    "candor_sink_insert_seconds",
    "Wall time of one batch insert into ClickHouse, retries and bisection included.",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROWS = Counter(
    "candor_sink_rows_total",
    "Rows written into ClickHouse by the sink (replays dropped by the dedup token included).",
    ["table"],
)
RETRIES = Counter(
    "candor_sink_retries_total",
    "Insert attempts retried after a transient ClickHouse failure.",
    ["table"],
)
COMMIT_RETRIES = Counter(
    "candor_sink_commit_retries_total",
    "Offset commits retried after a retriable Kafka error (group coordinator moving "
    "during a broker failover, request timeouts).",
)
DEAD_LETTERS = Counter(
    "candor_sink_dead_letters_total",
    "Messages the sink sent to the dead-letter topic, by reason.",
    ["reason"],
)
END_TO_END_LAG = Histogram(
    "candor_sink_end_to_end_lag_seconds",
    "Seconds from a capture event's device timestamp to its insert into ClickHouse.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
CONSUMER_LAG = Gauge(
    "candor_sink_consumer_lag_records",
    "Records of a sink's topic partition not yet committed by its consumer group "
    "(last stable offset minus committed offset), measured every few seconds.",
    ["topic", "partition"],
)
