"""Every table but events may batch on a longer age (`SinkOptions.other_max_age`)."""

from __future__ import annotations

import pytest

from sinks.consumer import SinkOptions
from sinks.routes import ROUTES


def _decrypt(*_: object) -> None:  # never called: no message is mapped here
    raise AssertionError("not used")


@pytest.mark.parametrize("table", sorted(ROUTES))
def test_without_it_every_route_batches_on_max_age(table: str) -> None:
    options = SinkOptions(decrypt=_decrypt, max_age=0.5)
    assert options.age_for(ROUTES[table]) == 0.5


@pytest.mark.parametrize("table", sorted(ROUTES))
def test_with_it_only_the_capture_events_keep_max_age(table: str) -> None:
    options = SinkOptions(decrypt=_decrypt, max_age=0.5, other_max_age=5.0)
    expected = 0.5 if table == "events" else 5.0
    assert options.age_for(ROUTES[table]) == expected
