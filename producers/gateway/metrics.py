"""Prometheus metrics of the HTTP gateway, defined once here.

`GatewayMetrics.on(registry)` returns the one set of collectors bound to a
registry, creating them on first use (tests build several gateways per process).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from producers.sdk.metric_set import MetricSet


@dataclass(frozen=True)
class GatewayMetrics(MetricSet):
    """The gateway's collectors."""

    requests: Counter
    request_seconds: Histogram
    events: Counter
    token_reload_failures: Counter

    @classmethod
    def _create(cls, registry: CollectorRegistry) -> GatewayMetrics:
        return cls(
            requests=Counter(
                "candor_gateway_requests_total",
                "HTTP requests to POST /v1/events, by response status.",
                ["status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "candor_gateway_request_seconds",
                "Time from request to response of POST /v1/events (Kafka acks included).",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
            events=Counter(
                "candor_gateway_events_total",
                "Events seen by the gateway, by outcome: accepted (acknowledged by Kafka),"
                " unconfirmed (Kafka did not ack in time) or the rejection reason.",
                ["outcome"],
                registry=registry,
            ),
            token_reload_failures=Counter(
                "candor_gateway_token_reload_failures_total",
                "Rewrites of the token file the gateway could not read; it keeps"
                " serving the last good set of tokens until the file is fixed.",
                registry=registry,
            ),
        )
