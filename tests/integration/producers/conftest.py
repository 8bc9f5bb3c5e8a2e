"""Fixtures of the producer integration tests: a fresh topic on the shared
Kafka, a private broker, a private X display. Their helpers are in
tests/integration/producers/broker.py and x11.py."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from candor.settings import Settings
from tests.harness import REPO
from tests.integration.producers.broker import PrivateBroker, make_topic


@pytest.fixture
def topic(settings: Settings, unique: str) -> str:
    """A fresh capture topic of this test on the shared Kafka."""
    return make_topic(settings, f"it.producers.{unique}")


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    home = tmp_path_factory.mktemp("private-kafka")
    shared_libs = REPO / ".candor" / "kafka" / "libs"
    if shared_libs.is_dir():  # reuse the jars instead of resolving them from Maven again
        libs = home / "kafka" / "libs"
        libs.mkdir(parents=True)
        for jar in shared_libs.iterdir():
            if jar.name == ".pom.sha256":
                shutil.copy(jar, libs / jar.name)
            else:
                (libs / jar.name).symlink_to(jar)
    broker = PrivateBroker(home)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb display, killed by PID afterwards."""
    number = next(
        n
        for n in range(90, 200)
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    name = f":{number}"
    xvfb = subprocess.Popen(
        ["Xvfb", name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert xvfb.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield name
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
