"""Two people's rows written straight into ClickHouse for the portal tests
(`seed_person`), and the master key of the portal's private pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from backends.clickhouse.connection import connect
from candor.settings import Settings

MASTER = bytes(range(2, 34))


DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Person:
    subject: str
    event_id: str
    session_id: str
    export_id: str


def seed_person(s: Settings, subject: str, now_us: int) -> Person:
    """One person's rows: 3 events over 2 days, a session, minutes, a consent
    version and an export that held them."""
    client = connect(s)
    tag = subject.replace("-", "")
    events = [
        [
            f"ev-{tag}-{i}",
            "org-t",
            subject,
            f"dev-{tag}",
            i,
            now_us - i * DAY_US // 2,
            kind,
            "Editor",
            text,
            ["secret"] if i == 0 else [],
        ]
        for i, (kind, text) in enumerate(
            [("KeyInput", f"typed by {subject}"), ("WindowFocus", None), ("KeyInput", "hello")]
        )
    ]
    client.insert(
        "events",
        events,
        column_names=[
            "event_id",
            "org_id",
            "subject_id",
            "device_id",
            "seq",
            "ts",
            "event_type",
            "app_name",
            "text",
            "redactions",
        ],
    )
    client.insert(
        "sessions",
        [
            [
                f"se-{tag}",
                "org-t",
                subject,
                f"dev-{tag}",
                now_us - 600_000_000,
                now_us,
                "gap",
                420.0,
                {"KeyInput": 2},
                {"Editor": 420.0},
            ]
        ],
        column_names=[
            "session_id",
            "org_id",
            "subject_id",
            "device_id",
            "start_ts",
            "end_ts",
            "end_reason",
            "active_seconds",
            "event_counts",
            "app_seconds",
        ],
    )
    minute = {
        "org_id": "org-t",
        "subject_id": subject,
        "window_start": now_us - 60_000_000,
        "keys": 5,
        "clicks": 1,
        "scrolls": 0,
        "mouse_distance_px": 0.0,
        "active_seconds": 50.0,
        "app_seconds": {"Editor": 30.0, "Terminal": 20.0},
        "events": 3,
    }
    # minutes land per device where the schema has that table (activity_minutes is
    # then a view summing them), else in activity_minutes itself
    per_device = client.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND "
        "name = 'activity_minutes_by_device'"
    ).result_rows[0][0]
    if per_device:
        minute["device_id"] = f"dev-{tag}"
    client.insert(
        "activity_minutes_by_device" if per_device else "activity_minutes",
        [list(minute.values())],
        column_names=list(minute),
    )
    client.insert(
        "consent_ledger",
        [
            [
                subject,
                "org-t",
                1,
                ["activity_metadata", "keystroke_content"],
                "candor-cli",
                now_us - DAY_US,
                "hired",
            ]
        ],
        column_names=[
            "subject_id",
            "org_id",
            "version",
            "scopes",
            "changed_by",
            "changed_at",
            "reason",
        ],
    )
    client.insert(
        "exports",
        [[f"x-{tag}", now_us, now_us - DAY_US, now_us, "parquet", [subject], [1], [], {}, 1, ""]],
        column_names=[
            "export_id",
            "created_at",
            "range_start",
            "range_end",
            "format",
            "subjects",
            "consent_versions",
            "shard_paths",
            "row_counts",
            "total_rows",
            "manifest_sha256",
        ],
    )
    return Person(subject, f"ev-{tag}-0", f"se-{tag}", f"x-{tag}")
