"""The canary's metrics, defined once. Imported only by a running canary, so the
other Candor processes (whose CLI knows the `canary` command) do not export them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

AGE = Gauge(
    "candor_canary_age_seconds",
    "Seconds since the event time of the newest canary heartbeat found in ClickHouse "
    "(since the canary started, while none has landed).",
)
TRANSIT = Gauge(
    "candor_canary_transit_seconds",
    "Seconds the newest landed canary heartbeat took from its event time to its "
    "insert into ClickHouse (its age on arrival).",
)
SENT = Counter("candor_canary_heartbeats_sent_total", "Canary heartbeats acknowledged by Kafka.")
ERRORS = Counter(
    "candor_canary_errors_total",
    "Canary failures, by stage: publish (Kafka refused or timed out) or "
    "check (ClickHouse query failed).",
    ["stage"],
)
