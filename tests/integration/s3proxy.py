"""An S3-compatible server of this test session: S3Proxy from Maven Central,
started by deploy/local/s3proxy.sh on a free port in a temporary directory and
stopped at the end of the session (by its PID file). Import `s3_server` into a
test module to use it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from backends.frame_store import FrameStoreSettings
from candor.stack import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local" / "s3proxy.sh"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def frame_settings(self, bucket: str) -> FrameStoreSettings:
        """Frame store settings for `bucket` on this server."""
        return FrameStoreSettings(
            backend="s3",
            bucket=bucket,
            endpoint_url=self.endpoint,
            access_key=SecretStr(self.access_key),
            secret_key=SecretStr(self.secret_key),
        )

    def env(self, bucket: str) -> dict[str, str]:
        """The CANDOR_FRAMES__* variables of a child process using `bucket`."""
        return {
            "CANDOR_FRAMES__BACKEND": "s3",
            "CANDOR_FRAMES__BUCKET": bucket,
            "CANDOR_FRAMES__ENDPOINT_URL": self.endpoint,
            "CANDOR_FRAMES__ACCESS_KEY": self.access_key,
            "CANDOR_FRAMES__SECRET_KEY": self.secret_key,
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """S3Proxy on 127.0.0.1 (jar cached under .candor/s3proxy/lib)."""
    port = free_port()
    env = {
        **os.environ,
        "CANDOR_HOME": str(REPO / ".candor"),
        "CANDOR_S3_PORT": str(port),
        "CANDOR_S3_DIR": str(tmp_path_factory.mktemp("s3proxy")),
        "CANDOR_S3_ACCESS_KEY": "candor-test",
        "CANDOR_S3_SECRET_KEY": "candor-test-secret",
    }
    subprocess.run([str(SCRIPT), "start"], env=env, check=True, capture_output=True, timeout=180)
    try:
        yield S3Server(f"http://127.0.0.1:{port}", "candor-test", "candor-test-secret")
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=True, capture_output=True, timeout=60)
