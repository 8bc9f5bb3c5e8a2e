"""Prometheus metrics of the HTTP gateway, defined once here.

`GatewayMetrics.on(registry)` returns the one set of collectors bound to a
registry, creating them on first use (tests build several gateways per process).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_LOCK = threading.Lock()
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, GatewayMetrics] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class GatewayMetrics:
    """The gateway's collectors."""

    requests: Counter
    request_seconds: Histogram
    events: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry | None = None) -> GatewayMetrics:
        """The metrics registered on `registry` (the default registry if None)."""
        target = REGISTRY if registry is None else registry
        with _LOCK:
            found = _BY_REGISTRY.get(target)
            if found is None:
                found = cls._create(target)
                _BY_REGISTRY[target] = found
            return found

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
        )
