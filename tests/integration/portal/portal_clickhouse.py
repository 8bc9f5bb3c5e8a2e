"""A private ClickHouse (the chdb engine, as deploy/local runs it) whose
configuration declares the portal's role and user, for the least-privilege test.

The chdb engine has no writable access storage, so the role and user must be
in its configuration: this is the configuration an operator adds (the grants
come from :func:`candor.portal.access.grants`). Run as a program:

    python -m tests.integration.portal.portal_clickhouse DIR HTTP_PORT TCP_PORT DATABASE SHA256

It serves until its serving query is killed (:func:`stop`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

MODULE = "tests.integration.portal.portal_clickhouse"

CONFIG = """<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <user_directories><users_xml><path>config.xml</path></users_xml></user_directories>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota>
      <access_management>1</access_management>
    </default>
    <{user}>
      <password_sha256_hex>{sha}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota>
      <grants><query>GRANT {role}</query></grants>
    </{user}>
  </users>
  <roles><{role}><grants>{grants}</grants></{role}></roles>
  <logger><level>warning</level><console>0</console><log>{dir}/clickhouse.log</log></logger>
</clickhouse>
"""

SERVE_SQL = """SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP;
SELECT sum(sleepEachRow(1)) FROM numbers(1000000000000)
SETTINGS function_sleep_max_microseconds_per_block = 0, max_block_size = 1,
         max_execution_time = 0, log_comment = 'candor-portal-test-serve'"""


def start(
    state: Path, http: int, tcp: int, database: str, password: str
) -> subprocess.Popen[bytes]:
    """Start the server in ``state``; return once it answers /ping (30 s at most)."""
    state.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(password.encode()).hexdigest()
    log = (state / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, str(state), str(http), str(tcp), database, sha],
        cwd=Path(__file__).resolve().parents[3],  # the repository, where `tests` is a package
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/ping", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"private ClickHouse did not start: {(state / 'serve.log').read_text()}")


def stop(proc: subprocess.Popen[bytes], http: int) -> None:
    """Kill the serving query (a clean engine stop), then wait for the process."""
    body = (
        b"KILL QUERY WHERE query LIKE '%candor-portal-test-serve%' AND query NOT LIKE 'KILL%' SYNC"
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{http}/", data=body), timeout=10
        ).read()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def main() -> int:
    # imported before chdir (see deploy/local/clickhouse_server.py)
    engine: Any = importlib.import_module("chdb._chdb")

    from candor.portal.access import PORTAL_ROLE, PORTAL_USER, grants

    state, http, tcp, database, sha = sys.argv[1:6]
    root = Path(state).resolve()
    (root / "data" / "tmp").mkdir(parents=True, exist_ok=True)
    queries = "".join(f"<query>GRANT {g}</query>" for g in grants(database))
    (root / "config.xml").write_text(
        CONFIG.format(
            http=http,
            tcp=tcp,
            user=PORTAL_USER,
            role=PORTAL_ROLE,
            sha=sha,
            grants=queries,
            dir=root,
        )
    )
    os.chdir(root)
    try:
        engine.query(SERVE_SQL, "TabSeparated", path=str(root / "data"))
    except Exception as err:  # the serving query ends by being killed
        return 0 if "cancel" in str(err).lower() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
