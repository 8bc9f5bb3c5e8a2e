"""A private pipeline per test: its own topic prefix on the shared broker, short
session gaps so sessions close within the test, and a consent set-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from candor.settings import Settings
from tests.harness import drop_pipeline, private_pipeline


@pytest.fixture
def pipeline_settings(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = private_pipeline(settings, unique, tmp_path / "home")
    yield s
    drop_pipeline(s)
