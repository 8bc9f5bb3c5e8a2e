"""A private Kafka + ClickHouse (deploy/local scripts in a temporary CANDOR_HOME) for
tests that kill servers."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from candor.settings import Settings
from tests.harness import REPO, kill9_pidfile

SCRIPTS = REPO / "deploy" / "local"


@dataclass
class PrivateStack:
    home: Path
    env: dict[str, str]
    settings: Settings

    def run(self, server: str, action: str) -> None:
        proc = subprocess.run(
            ["bash", str(SCRIPTS / f"{server}.sh"), action],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{server} {action}: {proc.stdout}\n{proc.stderr}"

    def kill9(self, server: str) -> None:
        kill9_pidfile(self.home / server / f"{server}.pid")
