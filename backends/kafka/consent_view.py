"""The consent registry as every worker sees it: the compacted `consent.policies`
log read from the beginning into memory, and kept up to date while running.

Why not a Faust GlobalTable: faust documents that a GlobalTable with several app
instances can loop forever in recovery unless it has one partition; the consent
log is partitioned like every Candor topic. A plain consumer that assigns itself
every partition (no consumer group, nothing committed) gives each worker the
whole registry and applies a revocation within one poll, i.e. well under a
second after it is published.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from privacy.consent import ConsentPolicy
from schemas.codec import decode_consent
from schemas.errors import SchemaError
from schemas.topics import Topic

log = logging.getLogger(__name__)

TOPIC = Topic.CONSENT_POLICIES


class ConsentView:
    """Thread-backed map subject_id -> latest ConsentPolicy.

    `start()` returns after the log was read up to its end as of start (so no
    event is judged against a registry that is still loading), or raises
    TimeoutError. Lookups are lock-free dict reads."""

    def __init__(self, client_config: dict[str, Any], topic: str = TOPIC) -> None:
        self._config = {
            **client_config,
            "group.id": "candor-consent-view-unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
        self._topic = topic
        self._policies: dict[str, ConsentPolicy] = {}
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None
        self.updates = 0

    def get(self, subject_id: str) -> ConsentPolicy | None:
        return self._policies.get(subject_id)

    def __len__(self) -> int:
        return len(self._policies)

    def start(self, timeout: float = 60.0) -> None:
        self._thread = threading.Thread(target=self._run, name="consent-view", daemon=True)
        self._thread.start()
        if not self._loaded.wait(timeout):
            raise TimeoutError(f"consent registry {self._topic} not loaded within {timeout}s")
        log.info("consent registry loaded: %d subjects", len(self._policies))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        consumer = Consumer(self._config)
        try:
            md = consumer.list_topics(self._topic, timeout=30)
            parts = list(md.topics[self._topic].partitions)
            consumer.assign([TopicPartition(self._topic, p, -2) for p in parts])  # -2: beginning
            pending_eof = set(parts)
            while not self._stop.is_set():
                for msg in consumer.consume(1000, timeout=0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            pending_eof.discard(msg.partition())
                        else:
                            log.warning("consent registry read error: %s", err)
                        continue
                    self._apply(msg.key(), msg.value())
                if not pending_eof and not self._loaded.is_set():
                    self._loaded.set()
        except Exception:  # the worker must hear about it: it checks `alive`
            log.exception("consent registry reader died")
            time.sleep(0)
        finally:
            consumer.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:  # tombstone: the subject's consent record was deleted
            if key is not None:
                self._policies.pop(key.decode(), None)
            return
        try:
            policy = ConsentPolicy.from_dict(decode_consent(value))
        except (SchemaError, ValueError, KeyError) as err:
            log.warning("unreadable consent record at key %r: %s", key, err)
            return
        current = self._policies.get(policy.subject_id)
        if current is None or policy.version >= current.version:
            self._policies[policy.subject_id] = policy
            self.updates += 1
