"""Per-device activity state: the route step's dedup ledger, the open session,
the minute windows and the action reducer of one device, kept together.

One Faust table entry per device holds `DeviceActivity.to_dict()`; the agent
loads it once per batch, folds every clean event of the device through the
three pure reducers, and stores it once. Pure: no faust, no Kafka.

Minute windows are kept per (subject, device): a subject working on two
devices gets one row per device and minute, which ClickHouse sums per subject;
the per-device key keeps the state co-partitioned with `capture.events`
(keyed by device_id) so no repartition topic is needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privacy.redaction import redact
from streams import actions, minutes, session
from streams.dedup import DeviceSeen
from streams.watermark import mark_of

#: What a stored minutes buffer holds when it equals the session's (stored once).
SAME_AS_SESSION = "same_as_session"


def redact_merged(text: str) -> tuple[str, tuple[str, ...]]:
    """Redactor for merged typing text (a secret split over chunks is seen once merged)."""
    out = redact(text)
    return out.text, tuple(out.rules)


@dataclass(frozen=True)
class ActivityConfig:
    session: session.SessionConfig = field(default_factory=session.SessionConfig)
    minutes: minutes.MinuteConfig = field(default_factory=minutes.MinuteConfig)
    actions: actions.ActionConfig = field(default_factory=actions.ActionConfig)


def late_event(event: Mapping[str, Any], stage: str, now: int) -> dict[str, Any]:
    """The `LateEvent` side-output record of an event `stage` found late at `now`."""
    return {
        "event_id": event["event_id"],
        "org_id": event["org_id"],
        "subject_id": event["subject_id"],
        "device_id": event["device_id"],
        "ts": event["ts"],
        "stage": stage,
        "detected_at": now,
    }


@dataclass
class Outputs:
    """What folding some events (or a timer tick) produced; `late` holds the
    `LateEvent` records of events behind a reducer's watermark."""

    sessions: list[dict[str, Any]] = field(default_factory=list)
    minutes: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)
    # rule hits of the redaction over merged typing (typed text is redacted there,
    # not per event), for the worker's redactions metric
    redactions: Counter[str] = field(default_factory=Counter)

    def extend(self, other: Outputs) -> None:
        self.sessions += other.sessions
        self.minutes += other.minutes
        self.actions += other.actions
        self.late += other.late
        self.redactions.update(other.redactions)

    def counting(
        self, redactor: Callable[[str], tuple[str, tuple[str, ...]]]
    ) -> Callable[[str], tuple[str, tuple[str, ...]]]:
        """`redactor`, counting its rule hits in `redactions`."""

        def redact_counted(text: str) -> tuple[str, tuple[str, ...]]:
            redacted, rules = redactor(text)
            self.redactions.update(rules)
            return redacted, rules

        return redact_counted

    def late_count(self, stage: str) -> int:
        return sum(1 for record in self.late if record["stage"] == stage)


@dataclass(slots=True)
class DeviceActivity:
    seen: DeviceSeen = field(default_factory=DeviceSeen)
    session: session.SessionState | None = None
    minutes: minutes.MinuteState | None = None
    actions: actions.ActionState | None = None

    def to_dict(self) -> dict[str, Any]:
        """The state as plain data (the worker's table entry). The session and
        the minute windows buffer the same events while they wait for the
        watermark: when their buffers are equal, the minutes' is stored as
        `SAME_AS_SESSION` instead of a second copy."""
        held = None if self.session is None else self.session.to_dict()
        windows = None if self.minutes is None else self.minutes.to_dict()
        if held is not None and windows is not None:
            pending = windows["clock"]["pending"]
            if pending and pending == held["clock"]["pending"]:
                windows["clock"]["pending"] = SAME_AS_SESSION
        return {
            "seen": self.seen.to_dict(),
            "session": held,
            "minutes": windows,
            "actions": None if self.actions is None else self.actions.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DeviceActivity:
        """Read `to_dict()`'s form (a minutes buffer `SAME_AS_SESSION` included)."""
        if not data:
            return cls()
        windows = data.get("minutes")
        if windows is not None and windows["clock"]["pending"] == SAME_AS_SESSION:
            windows = {
                **windows,
                "clock": {**windows["clock"], "pending": data["session"]["clock"]["pending"]},
            }
        return cls(
            seen=DeviceSeen.from_dict(data.get("seen")),
            session=None
            if data.get("session") is None
            else session.SessionState.from_dict(data["session"]),
            minutes=None if windows is None else minutes.MinuteState.from_dict(windows),
            actions=None
            if data.get("actions") is None
            else actions.ActionState.from_dict(data["actions"]),
        )

    @property
    def has_open_session(self) -> bool:
        return self.session is not None and self.session.open is not None

    def fold(self, events: Iterable[Mapping[str, Any]], now: int, cfg: ActivityConfig) -> Outputs:
        """Fold clean events (in partition order) into the three reducers."""
        out = Outputs()
        evs = list(events)
        if not evs:
            return out
        # both clocks buffer the same marks: make each event's mark (a mouse path's
        # length included) once, and share the immutable tuples between them
        marks = [mark_of(e) for e in evs]
        self.session, out.sessions, late_s = session.apply_many(
            self.session, evs, cfg.session, now, marks
        )
        self.minutes, out.minutes, late_m = minutes.apply_many(
            self.minutes, evs, cfg.minutes, now, marks
        )
        self.actions, out.actions, _ = actions.apply_many(
            self.actions, evs, cfg.actions, now, out.counting(redact_merged)
        )
        out.late = [late_event(e, "session", now) for e in late_s] + [
            late_event(e, "minutes", now) for e in late_m
        ]
        return out

    def quiet_at(self, cfg: ActivityConfig) -> int | None:
        """The earliest wall-clock time (micros) from which `tick` may close
        something; None when nothing is open or buffered (only a `fold` changes
        that). Before it, `tick` returns no outputs and leaves the state as it is,
        so a timer may pass the device over: each reducer's ``on_timer`` does
        nothing before its key was quiet for its period (session: gap + grace;
        minutes and actions: their ``quiet_micros``) or with nothing to close."""
        due: list[int] = []
        s, m, a = self.session, self.minutes, self.actions
        if (
            s is not None
            and s.clock.last_wall is not None
            and (s.open is not None or s.clock.pending)
        ):
            due.append(s.clock.last_wall + cfg.session.gap_micros + cfg.session.grace_micros)
        if m is not None and m.clock.last_wall is not None and (m.windows or m.clock.pending):
            due.append(m.clock.last_wall + cfg.minutes.quiet_micros)
        if a is not None and a.last_wall is not None and (a.open is not None or a.path is not None):
            due.append(a.last_wall + cfg.actions.quiet_micros)
        return min(due, default=None)

    def tick(self, now: int, cfg: ActivityConfig) -> Outputs:
        """Wall-clock timer: close what a quiet device leaves open."""
        out = Outputs()
        if self.session is not None:
            self.session, out.sessions = session.on_timer(self.session, now, cfg.session)
        if self.minutes is not None:
            self.minutes, out.minutes = minutes.on_timer(self.minutes, now, cfg.minutes)
        if self.actions is not None:
            self.actions, out.actions = actions.on_timer(
                self.actions, now, cfg.actions, out.counting(redact_merged)
            )
        return out


class TimerGate:
    """When the wall-clock timer may close what quiet devices left open.

    A device looks quiet when nothing of it arrived for a while, but so does
    every device while this worker was down, restarting, or cut off from the
    broker (capture clients spool meanwhile). Closing then would turn the
    backlog into late events. So: not during the first `period` after start
    or after a rebalance (`restart`);
    freely while input flows (a batch within `period`: the others still send,
    this device really is quiet); and when all input stopped, only after
    3 x `period` (the end of a working day, or an outage that long)."""

    def __init__(self, started: int, period: int) -> None:
        self.started, self.period, self.last_input = started, period, started

    def restart(self, now: int) -> None:
        """Partitions were (re)assigned at `now`: as after a start, their backlog
        may still be on its way for a `period`."""
        self.started = now

    def may_close(self, now: int) -> bool:
        """True when a timer tick at `now` (micros) may close quiet devices."""
        if now - self.started < self.period:
            return False
        silent = now - self.last_input
        return silent < self.period or silent >= 3 * self.period
