"""Prometheus metrics of the capture SDK, defined once here.

`ProducerMetrics.on(registry)` returns the one set of collectors bound to a
registry (creating them on first use), so any number of clients in a process
share them instead of failing with duplicate registrations.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from producers.sdk.metric_set import MetricSet


@dataclass(frozen=True)
class ProducerMetrics(MetricSet):
    """The capture SDK's collectors."""

    events_sent: Counter
    delivery_errors: Counter
    events_spooled: Counter
    events_dropped: Counter
    spool_depth: Gauge
    spool_bytes: Gauge

    @classmethod
    def _create(cls, registry: CollectorRegistry) -> ProducerMetrics:
        return cls(
            events_sent=Counter(
                "candor_producer_events_sent_total",
                "Events the broker acknowledged (acks=all), direct or replayed from the spool.",
                registry=registry,
            ),
            delivery_errors=Counter(
                "candor_producer_delivery_errors_total",
                "Failed delivery attempts, by reason (a retried event may count more than once).",
                ["reason"],
                registry=registry,
            ),
            events_spooled=Counter(
                "candor_producer_events_spooled_total",
                "Events written to the disk spool because the broker could not take them.",
                registry=registry,
            ),
            events_dropped=Counter(
                "candor_producer_events_dropped_total",
                "Events given up for good (non-retriable error, spool full), by reason.",
                ["reason"],
                registry=registry,
            ),
            spool_depth=Gauge(
                "candor_producer_spool_depth_records",
                "Records in the disk spool not yet delivered.",
                registry=registry,
            ),
            spool_bytes=Gauge(
                "candor_producer_spool_bytes",
                "Bytes the disk spool's segments take on disk.",
                registry=registry,
            ),
        )
