"""A private Prometheus per test: a generated config scraping the test's own
processes every second, the repo's alert rules loaded, its own TSDB directory
and port. Started as `prometheus` (Debian's package) and killed by PID; the
shared Prometheus of the local stack is never touched."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.observability.private_prometheus import PrivatePrometheus


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, list[int]]], PrivatePrometheus]]:
    if shutil.which("prometheus") is None:
        pytest.skip(
            "prometheus (Debian package) is not installed: deploy/local/prometheus.sh install"
        )
    servers: list[PrivatePrometheus] = []

    def start(targets: dict[str, list[int]]) -> PrivatePrometheus:
        workdir = tmp_path / f"prometheus-{len(servers)}"
        workdir.mkdir()
        server = PrivatePrometheus(workdir)
        servers.append(server)
        server.start(targets)
        return server

    yield start
    for server in servers:
        server.stop()
