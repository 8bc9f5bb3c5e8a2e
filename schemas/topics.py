"""Candor's Kafka topics: one name each, the contract between the stages.

The real topic name is ``KafkaSettings.topic(Topic.X)`` (the configured prefix
plus the value). A `StrEnum`: a member is its name wherever a `str` is expected.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """The topics of docs/architecture.md (key and cleanup policy are in
    `backends.kafka.topics.topic_specs`)."""

    CAPTURE_EVENTS = "capture.events"
    CAPTURE_CLEAN = "capture.clean"
    CAPTURE_DLQ = "capture.dlq"
    CONSENT_POLICIES = "consent.policies"
    ACTIVITY_SESSIONS = "activity.sessions"
    ACTIVITY_MINUTES = "activity.minutes"
    TRAINING_ACTIONS = "training.actions"
    ACTIVITY_LATE = "activity.late"
