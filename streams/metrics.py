"""Prometheus metrics of the stream workers, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter("candor_worker_events_in_total", "Raw capture events read, by topic", ["topic"])
EVENTS_OUT = Counter("candor_worker_events_out_total", "Records published, by topic", ["topic"])
DEAD_LETTERS = Counter(
    "candor_worker_dead_letters_total", "Inputs sent to capture.dlq, by typed reason", ["reason"]
)
DROPS = Counter(
    "candor_worker_drops_total",
    "Events dropped on purpose (no_consent, outside_capture_hours, duplicate)",
    ["reason"],
)
REDACTIONS = Counter("candor_worker_redactions_total", "Redaction rule hits, by rule", ["rule"])
LATE_EVENTS = Counter(
    "candor_worker_late_events_total",
    "Events behind the watermark, by stage (session, minutes)",
    ["stage"],
)
BATCH_SECONDS = Histogram(
    "candor_worker_batch_seconds",
    "Wall time to process one batch (decode to sends flushed)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "candor_worker_batch_events",
    "Events per processed batch",
    buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
)
OPEN_SESSIONS = Gauge("candor_worker_open_sessions", "Sessions currently open in this worker")
CONSENT_SUBJECTS = Gauge(
    "candor_worker_consent_subjects", "Subjects in this worker's consent registry view"
)
OFFSETS_REREAD = Counter(
    "candor_worker_offsets_reread_total",
    "Seeks back to the next expected offset of an input partition after "
    "records went missing between fetch and agent (faust's rebalance paths)",
    ["topic"],
)
OFFSETS_LOST = Counter(
    "candor_worker_offsets_lost_total",
    "Input offsets deleted by retention before the worker read them",
    ["topic"],
)
SEQ_REGRESSIONS = Counter(
    "candor_worker_seq_regressions_total",
    "Events passed on although a higher seq of their device had passed already (not "
    "duplicates; marked seq_regression in the events' redaction trail), by device",
    ["device_id"],
)
REBALANCES = Counter(
    "candor_worker_rebalances_total",
    "Consumer-group rebalances this worker completed (table recovery done, "
    "streams about to resume); a high rate means members keep joining, "
    "leaving or missing heartbeats",
)
RECORDS_ROUTED = Counter(
    "candor_worker_records_total",
    "capture.events records routed, by path: 'batch' (a DeviceBatch routed at once) or "
    "'event' (event by event: single-event records, and batches failing a condition of the "
    "batch path)",
    ["path"],
)
GC_PAUSE_SECONDS = Histogram(
    "candor_worker_gc_pause_seconds",
    "Wall time of each garbage collection of the worker process (it stops every "
    "thread: the agent, the intake and the producers), by generation",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
