"""A private Prometheus: a generated config scraping a test's own processes every
second, the repo's alert rules loaded, its own TSDB directory and port. Started as
`prometheus` (Debian's package) and killed by PID; the shared Prometheus of the local
stack is never touched."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.harness import REPO, free_port

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"


class PrivatePrometheus:
    """One prometheus process and its HTTP API."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    def start(self, targets: dict[str, list[int]]) -> None:
        """Scrape ``{job: [ports on 127.0.0.1]}`` every second; block until ready."""
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}],
                }
                for job, ports in targets.items()
            ],
        }
        conf = self.workdir / "prometheus.yml"
        conf.write_text(json.dumps(config, indent=2))  # JSON is YAML
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={conf}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        raise AssertionError(f"prometheus not ready in 60s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns ``data``; raises AssertionError on an API error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read())
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector (or scalar as one sample) of `expr` now."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The single value of `expr` now (None when the result is empty)."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, f"{expr} gave {len(result)} series"
        return float(result[0]["value"][1])
