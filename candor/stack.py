"""The local stack: start, stop and health-check Kafka, ClickHouse and Prometheus.

Starting and stopping is done by the scripts in `deploy/local/` (they own the
PID files); this module runs them with the settings' state directory and
checks each server's health with a real client.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from candor.settings import REPO_ROOT, Settings, child_env

SCRIPTS = REPO_ROOT / "deploy" / "local"
SERVERS = ("kafka", "clickhouse", "prometheus")


class StackError(RuntimeError):
    """A stack script failed; the message carries its last output lines."""


@dataclass(frozen=True)
class Health:
    server: str
    endpoint: str
    up: bool
    detail: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now (tests and benchmarks
    start their own servers there). Another process may take it before the
    caller binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script_env(settings: Settings) -> dict[str, str]:
    import os  # child processes inherit the caller's environment plus our state dir

    env = dict(os.environ)
    env["CANDOR_HOME"] = str(settings.home)
    kafka_port = settings.kafka.bootstrap.rsplit(":", 1)[-1]
    env.setdefault("CANDOR_KAFKA_PORT", kafka_port)
    ch = urlparse(settings.clickhouse.url)
    if ch.port:
        env.setdefault("CANDOR_CLICKHOUSE_HTTP_PORT", str(ch.port))
    prom = urlparse(settings.prometheus_url)
    if prom.port:
        env.setdefault("CANDOR_PROMETHEUS_PORT", str(prom.port))
    return env


def _cluster_marker(settings: Settings) -> Path:
    """Written by `up` with several Kafka nodes: their count, for `down` and `status`."""
    return settings.home / "kafka-cluster" / "nodes"


def kafka_nodes(settings: Settings) -> int:
    """How many Kafka nodes the local stack runs: 1, or what `up(kafka_nodes=N)` recorded."""
    try:
        return max(1, int(_cluster_marker(settings).read_text().strip()))
    except (OSError, ValueError):
        return 1


def _script(settings: Settings, server: str) -> tuple[str, dict[str, str]]:
    """The deploy/local script serving `server` and its extra environment: with
    several Kafka nodes, kafka_cluster.sh, node I serving clients on the settings'
    Kafka port + I - 1 (controllers after the last client port)."""
    nodes = kafka_nodes(settings) if server == "kafka" else 1
    if nodes == 1:
        return server, {}
    port = settings.kafka.bootstrap.split(",")[0].rsplit(":", 1)[-1]
    return "kafka_cluster", {"CANDOR_KAFKA_NODES": str(nodes), "CANDOR_KAFKA_CLUSTER_PORT": port}


def run_script(settings: Settings, server: str, action: str) -> None:
    """Run `deploy/local/<server>.sh <action>` (kafka_cluster.sh for a Kafka of
    several nodes); raise StackError when it fails.

    Blocks until the script returns (a start waits for its ready check)."""
    script, extra = _script(settings, server)
    proc = subprocess.run(
        ["bash", str(SCRIPTS / f"{script}.sh"), action],
        env={**_script_env(settings), **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise StackError(f"{server} {action} failed (exit {proc.returncode}):\n{tail}")


def up(settings: Settings, servers: tuple[str, ...] = SERVERS, kafka_nodes: int = 1) -> None:
    """Start the servers in order; on failure stop those this call started.

    `kafka_nodes` > 1 runs Kafka as a cluster of that many combined KRaft nodes
    (deploy/local/kafka_cluster.sh: replication 3, min ISR 2, clients on the
    settings' Kafka port and the next ones); `down` and `status` then handle the
    cluster. Raises StackError when a one-node Kafka of this home already runs
    and a cluster is asked for (or the reverse): stop it first."""
    if "kafka" in servers:
        _choose_kafka(settings, kafka_nodes)
    started: list[str] = []
    for server in servers:
        already = _script_status(settings, server)
        try:
            run_script(settings, server, "start")
        except StackError:
            for name in reversed(started):
                run_script(settings, name, "stop")
            raise
        if not already:
            started.append(server)


def _choose_kafka(settings: Settings, nodes: int) -> None:
    if nodes < 1:
        raise StackError(f"--kafka-nodes must be at least 1, not {nodes}")
    running = kafka_nodes(settings)
    if running != nodes and _script_status(settings, "kafka"):
        raise StackError(
            f"a Kafka of {running} node(s) runs from {settings.home}; `candor stack down` first"
        )
    marker = _cluster_marker(settings)
    if nodes == 1:
        marker.unlink(missing_ok=True)
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{nodes}\n")


def _script_status(settings: Settings, server: str) -> bool:
    script, extra = _script(settings, server)
    proc = subprocess.run(
        ["bash", str(SCRIPTS / f"{script}.sh"), "status"],
        env={**_script_env(settings), **extra},
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def down(settings: Settings, servers: tuple[str, ...] = SERVERS) -> None:
    """Stop the servers (reverse order), each by its PID file; with every server,
    also the portal the demo left running (`start_portal`)."""
    if servers == SERVERS:
        stop_portal(settings)
    for server in reversed(servers):
        run_script(settings, server, "stop")
    if "kafka" in servers:
        _cluster_marker(settings).unlink(missing_ok=True)  # the next `up` is one node again


def _portal_pidfile(settings: Settings) -> Path:
    return settings.home / "portal" / "portal.pid"


def portal_serving(settings: Settings) -> bool:
    """Whether the portal answers on ``settings.portal.public_url``; never raises."""
    try:
        with urllib.request.urlopen(
            f"{settings.portal.public_url.rstrip('/')}/healthz", timeout=2
        ) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_portal(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Leave `candor portal serve` running in the background like the servers
    (PID file under ``<home>/portal``, log ``<home>/logs/portal.log``; `down`
    stops it), reading ClickHouse as the portal's least-privilege user
    (`candor.portal.local_access.portal_login`). Returns True once it answers,
    also when it already did; False when it did not start within `timeout_s`
    (see its log)."""
    import os
    import sys
    import time

    if portal_serving(settings):
        return True
    log = settings.home / "logs" / "portal.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    _portal_pidfile(settings).parent.mkdir(parents=True, exist_ok=True)
    from candor.portal.local_access import portal_login

    login_args, login_env = portal_login(settings)
    with log.open("ab") as out:
        env = child_env(settings, dict(os.environ))
        env["CANDOR_PORTAL__PUBLIC_URL"] = settings.portal.public_url
        env.update(login_env)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "candor.cli",
                "portal",
                "serve",
                "--port",
                str(urlparse(settings.portal.public_url).port or 8090),
                *login_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    _portal_pidfile(settings).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if portal_serving(settings):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.3)
    return False


def stop_portal(settings: Settings) -> None:
    """Stop the portal `start_portal` left running, by its PID file (SIGTERM)."""
    import os
    import signal

    pidfile = _portal_pidfile(settings)
    try:
        pid = int(pidfile.read_text().strip())
        # only our portal: a PID left from an earlier boot may name another process now
        ours = b"portal" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        ours = False
    if ours:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(pid, signal.SIGTERM)
    pidfile.unlink(missing_ok=True)


def check(settings: Settings, server: str) -> Health:
    """Ask one server whether it serves; never raises."""
    try:
        if server == "kafka":
            from confluent_kafka.admin import AdminClient

            quiet: dict[str, str | int | float | bool] = {
                **settings.kafka.client_config(),
                "log_level": 0,
            }
            md = AdminClient(quiet).list_topics(timeout=3)
            return Health(
                server,
                settings.kafka.bootstrap,
                True,
                f"{len(md.brokers)} broker(s), {len(md.topics)} topics",
            )
        if server == "clickhouse":
            req = urllib.request.Request(settings.clickhouse.url + "/", data=b"SELECT version()")
            with urllib.request.urlopen(req, timeout=3) as r:
                version = r.read().decode().strip()
            return Health(server, settings.clickhouse.url, True, f"ClickHouse {version}")
        if server == "prometheus":
            with urllib.request.urlopen(settings.prometheus_url + "/-/ready", timeout=3) as r:
                return Health(server, settings.prometheus_url, r.status == 200, "ready")
    except Exception as err:  # health is a yes/no answer with a reason
        endpoint = {
            "kafka": settings.kafka.bootstrap,
            "clickhouse": settings.clickhouse.url,
            "prometheus": settings.prometheus_url,
        }.get(server, "?")
        return Health(server, endpoint, False, f"{type(err).__name__}: {err}".splitlines()[0][:120])
    raise ValueError(f"unknown server {server!r}; expected one of {SERVERS}")


def status(settings: Settings) -> list[Health]:
    return [check(settings, s) for s in SERVERS]
