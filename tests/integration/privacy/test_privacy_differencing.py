"""The differencing attack on the analyst views, replayed on real ClickHouse.

The attack (issue 14): read a team's total, let one person (s3) revoke
`analytics`, read again; with exact views the difference was s3's exact total.
With the noisy views the difference is s3's total plus the difference of two
independent Laplace draws of scale b = B / epsilon (privacy/README.md): over
many teams its error has the size that scale predicts, it is almost never
close to the truth, and reading again returns the same numbers (no averaging).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from backends.clickhouse.analyst_access import analyst_database
from backends.clickhouse.connection import connect
from candor.settings import Settings, replace
from sinks.migrate import migrate
from sinks.rows import CONSENT_COLUMNS, MINUTE_COLUMNS, consent_row, minute_row
from tests.unit.sinks.sinks_samples import MINUTE, consent

pytestmark = pytest.mark.integration

TEAMS = 40
PEOPLE = 6
KEYS_BOUND = 20_000  # per person and day (migration 0006)
EPSILON = 1.0
SCALE = KEYS_BOUND / EPSILON
S3_KEYS = 300


@pytest.fixture
def views(settings: Settings, unique: str) -> Iterator[Settings]:
    s = replace(settings, clickhouse={"database": f"candor_dp_{unique}"})
    migrate(s)
    yield s
    admin = connect(s, database="")
    admin.command(f"DROP DATABASE IF EXISTS {analyst_database(s)}")
    admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


def _minutes_table(s: Settings) -> str:
    """Where minute rows land (a table of 0005, else 0001's)."""
    rows = (
        connect(s)
        .query(
            "SELECT name FROM system.tables WHERE database = {d:String} "
            "AND name = 'activity_minutes_by_device'",
            parameters={"d": s.clickhouse.database},
        )
        .result_rows
    )
    return "activity_minutes_by_device" if rows else "activity_minutes"


def _fill(s: Settings, minute: int) -> None:
    client = connect(s)
    ledger, rows = [], []
    for team in range(TEAMS):
        org = f"team{team:02d}"
        for p in range(PEOPLE):
            subject = f"{org}-s{p}"
            ledger.append(dict(consent(subject, 1, ["activity_metadata", "analytics"]), org_id=org))
            keys = S3_KEYS if p == 3 else 350
            rows.append(
                dict(
                    MINUTE,
                    org_id=org,
                    subject_id=subject,
                    window_start=minute,
                    device_id=f"d-{subject}",
                    keys=keys,
                )
            )
    client.insert("consent_ledger", [consent_row(c) for c in ledger], column_names=CONSENT_COLUMNS)
    client.insert(_minutes_table(s), [minute_row(m) for m in rows], column_names=MINUTE_COLUMNS)


def _revoke_s3(s: Settings) -> None:
    ledger = [
        dict(consent(f"team{t:02d}-s3", 2, ["activity_metadata"]), org_id=f"team{t:02d}")
        for t in range(TEAMS)
    ]
    connect(s).insert(
        "consent_ledger", [consent_row(c) for c in ledger], column_names=CONSENT_COLUMNS
    )


def _read(s: Settings) -> dict[str, tuple[int, int]]:
    rows = (
        connect(s)
        .query(f"SELECT org_id, people, keys FROM {analyst_database(s)}.team_daily_activity")
        .result_rows
    )
    return {str(org): (int(people), int(keys)) for org, people, keys in rows}


def test_before_and_after_one_revocation_does_not_reveal_the_person(views: Settings) -> None:
    s = views
    _fill(s, int(time.time()) // 60 * 60_000_000)
    before = _read(s)
    assert _read(s) == before  # sticky: a second read cannot average the noise away
    assert len(before) == TEAMS and {p for p, _ in before.values()} == {PEOPLE}
    _revoke_s3(s)
    after = _read(s)
    assert {p for p, _ in after.values()} == {PEOPLE - 1}  # who is counted stays exact

    errors = [abs((before[t][1] - after[t][1]) - S3_KEYS) for t in before]
    exact = sum(1 for e in errors if e == 0)
    close = sum(1 for e in errors if e < 1000)  # within 1000 keys of s3's total
    mean = sum(errors) / len(errors)
    # |L1 - L2| for independent Laplace(b) has mean 1.5 b; P(< 1000) is about 0.025
    # at b = 20000, and the mean of 40 draws stays within [0.75 b, 2.5 b] by far.
    assert exact == 0
    assert close <= TEAMS // 5, errors
    assert 0.75 * SCALE <= mean <= 2.5 * SCALE, mean
    # useful: no released total is further from the truth than 15 b (P = e^-15)
    for team, (_people, keys) in before.items():
        assert abs(keys - (5 * 350 + S3_KEYS)) <= 15 * SCALE, team
    assert not math.isnan(mean)
