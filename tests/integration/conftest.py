"""Fixtures of the integration suites: a private pipeline per test (topic
prefix, ClickHouse database, master key), sinks run in-process with the
privacy decrypt hook, and the privacy CLI called through its own argument
parser (the privacy and the worker's bad-batch tests use them)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import KeyView
from backends.kafka.topics import create_topics
from candor.privacy_cli import add_commands
from candor.settings import Settings, replace
from sinks.migrate import migrate
from tests.harness import SinkThreads
from tests.integration.privacy.pipeline import MASTER, Cli


@pytest.fixture
def private_settings(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = replace(
        settings,
        home=tmp_path / "home",
        # child processes get the master key through the env
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"priv-{unique}.", "partitions": 3},
        clickhouse={"database": f"candor_priv_{unique}"},
        streams={
            "session_gap_s": 5,
            "grace_s": 1,
            "minute_quiet_s": 3,
            "action_quiet_s": 1,
            "timer_interval_s": 1,
            "batch_within_s": 0.2,
        },
    )
    create_topics(s)
    migrate(s)
    yield s
    admin = connect(s, database="")
    admin.command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")
    admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


@pytest.fixture
def master_file(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    path.write_text(MASTER.hex())
    return path


@pytest.fixture
def cli(private_settings: Settings, master_file: Path) -> Cli:
    """Run a privacy sub-command in-process: ``cli("consent", "grant", ...)``."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    handlers = add_commands(sub)

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        if hasattr(args, "master_key_file") and args.master_key_file is None:
            args.master_key_file = master_file
        return handlers[args.command](args, private_settings)

    return run


@pytest.fixture
def sinks(private_settings: Settings) -> Iterator[KeyView]:
    """Every sink (but the DLQ's) in a thread, decrypting with a live KeyView."""
    running = SinkThreads(private_settings, MASTER, "test-sink")
    yield running.view
    running.close()
