"""The consent registry's shell: read a subject's current policy from the
compacted `consent.policies` log and publish the next version.

The log is the registry (docs/architecture.md); the ClickHouse `consent_ledger` is filled
from it by the sink. Versions only grow: a change is computed by
`privacy.consent.grant/revoke` from the current policy read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from confluent_kafka import Producer

from backends.clickhouse.settings import ClickHouseSettings
from backends.kafka.consent_view import TOPIC, ConsentView  # TOPIC: the unprefixed name
from backends.kafka.settings import HasKafka, KafkaSettings
from privacy.consent import ConsentPolicy, grant, revoke
from schemas.clock import now_micros
from schemas.codec import encode_consent


class ConsentRegistrySettings(Protocol):
    """What a grant reads: Kafka (the registry), ClickHouse (the subject's data
    key is created with the grant) and the master key wrapping it
    (`candor.settings.Settings` has them all)."""

    @property
    def kafka(self) -> KafkaSettings: ...
    @property
    def clickhouse(self) -> ClickHouseSettings: ...

    def master_key(self) -> bytes:
        """The master key wrapping subjects' data keys; raises `KeyStoreError`."""
        ...


def load_registry(settings: HasKafka, timeout: float = 30.0) -> ConsentView:
    """Read the whole registry as of now (blocks until the end of the log)."""
    view = ConsentView(dict(settings.kafka.client_config()), settings.kafka.topic(TOPIC))
    view.start(timeout)
    view.stop()
    return view


def publish(settings: HasKafka, policies: Iterable[ConsentPolicy], timeout: float = 30.0) -> int:
    """Publish policies keyed by subject; returns how many were acknowledged.

    Raises RuntimeError when any was not acknowledged within `timeout`."""
    producer = Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
    )
    errors: list[str] = []

    def done(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    n = 0
    for policy in policies:
        producer.produce(
            settings.kafka.topic(TOPIC),
            key=policy.subject_id,
            value=encode_consent(policy.to_dict()),
            on_delivery=done,
        )
        producer.poll(0)
        n += 1
    left = producer.flush(timeout)
    if errors or left:
        raise RuntimeError(f"consent publish failed: {left} unacknowledged, errors {errors[:3]}")
    return n


def grant_many(
    settings: ConsentRegistrySettings, policies: Iterable[ConsentPolicy], actor: str
) -> int:
    """Publish granted policies the way `candor consent grant` does: each
    consenting subject's data key is created first (so workers encrypt its
    content instead of clearing it), then the policies, then an audit row each."""
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import ensure_subject_key, verify_master, write_audit

    policies = list(policies)
    client = connect(settings)
    master = settings.master_key()
    verify_master(client, master, create=True)
    for policy in policies:
        if policy.scopes:
            ensure_subject_key(client, master, policy.subject_id, actor)
    n = publish(settings, policies)
    for policy in policies:
        write_audit(
            client,
            actor,
            "consent_grant",
            policy.subject_id,
            {"version": policy.version, "scopes": policy.to_dict()["scopes"]},
        )
    return n


def grant_scopes(
    settings: ConsentRegistrySettings,
    subject_id: str,
    org_id: str | None,
    scopes: list[str],
    by: str,
    reason: str | None = None,
) -> ConsentPolicy:
    """Grant `scopes` (on top of what the subject holds) and publish the new version."""
    current = load_registry(settings).get(subject_id)
    policy = grant(
        current, scopes, by, now_micros(), subject_id=subject_id, org_id=org_id, reason=reason
    )
    publish(settings, [policy])
    return policy


def revoke_scopes(
    settings: HasKafka,
    subject_id: str,
    scopes: list[str] | None,
    by: str,
    reason: str | None = None,
) -> ConsentPolicy:
    """Revoke `scopes` (None = all) and publish the new version."""
    current = load_registry(settings).get(subject_id)
    policy = revoke(current, scopes, by, now_micros(), reason=reason)
    publish(settings, [policy])
    return policy
