"""One set of collectors per Prometheus registry.

A component's metrics are a frozen dataclass of collectors; `MetricSet.on(registry)`
returns the one instance bound to that registry, creating it on first use, so any
number of clients (or gateways in a test process) share it instead of failing
with duplicate registrations."""

from __future__ import annotations

import threading
import weakref
from typing import Any, ClassVar, Self

from prometheus_client import REGISTRY, CollectorRegistry

_LOCK = threading.Lock()


class MetricSet:
    """Base of a component's metric dataclass; subclasses implement `_create`."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._by_registry = weakref.WeakKeyDictionary()

    @classmethod
    def on(cls, registry: CollectorRegistry | None = None) -> Self:
        """The metrics registered on `registry` (the default registry if None)."""
        target = REGISTRY if registry is None else registry
        with _LOCK:
            found = cls._by_registry.get(target)
            if found is None:
                found = cls._by_registry[target] = cls._create(target)
            return found

    @classmethod
    def _create(cls, registry: CollectorRegistry) -> Self:
        raise NotImplementedError
