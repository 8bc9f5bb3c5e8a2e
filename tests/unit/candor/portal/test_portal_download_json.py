"""JSON of the download: ClickHouse values become portable JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from candor.portal.download import json_default


def test_clickhouse_values_become_json() -> None:
    row = {
        "ts": datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
        "day": date(2026, 11, 29),
        "raw": b"abc",
        "tags": ("a", "b"),
    }
    assert json.loads(json.dumps(row, default=json_default)) == {
        "ts": "2026-11-29T09:00:00+00:00",
        "day": "2026-11-29",
        "raw": "abc",
        "tags": ["a", "b"],
    }


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=json_default)
