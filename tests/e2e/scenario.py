"""The input of the pipeline tests: a simulated population with consent for
some, the events it produces, some bad input, sent to capture.events."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from backends.kafka.consent_registry import grant_many
from candor.settings import Settings
from privacy.consent import grant
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import Simulator
from schemas.clock import now_micros
from schemas.codec import encode_event

PEOPLE = 12
SIM_SECONDS = 60


class Scenario:
    """Consent for 10 people in full, 1 metadata-only, 1 none; simulated events,
    some bad input and some client retries (same events sent twice)."""

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.sim = Simulator(PEOPLE, seed=seed, start_ts=now_micros() - 90_000_000)
        devices = self.sim.devices
        full = [
            "activity_metadata",
            "keystroke_content",
            "screen_frames",
            "ide_content",
            "terminal_content",
            "training_use",
            "analytics",
            "window_titles",
        ]
        policies = [
            grant(None, full, "e2e", now_micros(), subject_id=d.subject_id, org_id="org-sim")
            for d in devices[:10]
        ]
        policies.append(
            grant(
                None,
                ["activity_metadata"],
                "e2e",
                now_micros(),
                subject_id=devices[10].subject_id,
                org_id="org-sim",
            )
        )
        grant_many(settings, policies, "e2e")
        self.no_consent_subject = devices[11].subject_id
        self.metadata_only_subject = devices[10].subject_id
        self.events = list(self.sim.events(SIM_SECONDS))
        bad_ts = dict(
            self.events[0], event_id="f" * 36, seq=10**9, ts=now_micros() + 86_400_000_000
        )
        self.bad = [b"\x00garbage", encode_event(self.events[1])[:-7], encode_event(bad_ts)]
        self.producer = Producer(producer_config(settings.kafka.bootstrap))

    def send(self, events: list[dict[str, Any]]) -> None:
        topic = self.settings.kafka.topic("capture.events")
        for e in events:
            self.producer.produce(topic, key=e["device_id"], value=encode_event(e))
            self.producer.poll(0)
        assert self.producer.flush(30) == 0

    def send_bad(self) -> None:
        topic = self.settings.kafka.topic("capture.events")
        for value in self.bad:
            self.producer.produce(topic, key=b"dev-bad", value=value)
        assert self.producer.flush(30) == 0

    @property
    def expected_clean(self) -> dict[str, dict[str, Any]]:
        return {e["event_id"]: e for e in self.events if e["subject_id"] != self.no_consent_subject}
