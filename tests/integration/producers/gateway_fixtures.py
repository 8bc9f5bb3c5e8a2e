"""A real gateway process for the integration tests, and a tiny HTTP client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import REPO


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class GatewayProcess:
    """A gateway subprocess on `port`; `tokens` maps a name to its bearer token."""

    port: int
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        req = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Reply(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read(), dict(err.headers))

    def post(
        self, body: bytes, *, token: str | None, content_type: str = "application/json"
    ) -> Reply:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("POST", "/v1/events", body, headers)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_gateway(
    bootstrap: str,
    topic: str,
    token_file: Path,
    port: int,
    *extra: str,
    env: Mapping[str, str] | None = None,
    entry: str = "candor.gateway_cli",
    timeout_s: float = 30.0,
    stderr: int = subprocess.DEVNULL,
) -> GatewayProcess:
    """Start `python -m <entry> gateway` (``candor.cli`` composes the frame route)
    with `env` (default: this process's, publishing to `bootstrap`) and wait for
    /healthz. A gateway that exits during start-up fails the test with the tail of
    its stderr when `stderr` is ``subprocess.PIPE``."""
    env = dict(env) if env is not None else {**os.environ, "CANDOR_KAFKA_BOOTSTRAP": bootstrap}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            entry,
            "gateway",
            "--port",
            str(port),
            "--token-file",
            str(token_file),
            "--topic",
            topic,
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    gateway = GatewayProcess(port, process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.stderr.read().decode()[-3000:] if process.stderr else ""
            raise AssertionError(f"gateway exited during start-up: {said}")
        try:
            if gateway.request("GET", "/healthz").status == 200:
                return gateway
        except OSError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise TimeoutError("gateway did not answer /healthz")


def envelope(
    device: str = "dev-a", subject: str = "sub-a", org: str = "org-a", seq: int = 1, **fields: Any
) -> dict[str, Any]:
    """A valid contract envelope of `device` (override any field)."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "org_id": org,
        "subject_id": subject,
        "device_id": device,
        "seq": seq,
        "ts": 1_760_000_000_000_000 + seq,
        "received_ts": None,
        "app": {"app_name": "code", "window_title": "main.py", "url_host": None},
        "payload": {
            "type": "KeyInput",
            "key": None,
            "text": "hello",
            "modifiers": [],
            "is_secure_field": False,
            "count": 5,
        },
        "redactions": [],
        "consent_version": None,
    }
    event.update(fields)
    return event


def json_batch(*events: Any) -> bytes:
    return json.dumps({"events": list(events)}).encode()
