"""The portal in a real browser against the real stack.

One pipeline per module: a private topic prefix and ClickHouse database on the
shared servers, a real `candor worker` process, the sinks in threads
(decrypting with a live key view), the portal as `candor portal serve`, and
Debian's chromium driven headless by selenium through chromium-driver.

Chromium is found on PATH (`chromium`, `chromedriver`; deploy/local/bootstrap.sh
installs both). Without them the tests are skipped with the reason; CI installs
them, so CI runs them. Screenshots and axe reports go to
`$CANDOR_TEST_ARTIFACTS/browser` (default `.candor/test-artifacts/browser`).
"""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from backends.clickhouse.connection import connect
from backends.kafka.topics import create_topics
from candor.settings import Settings, replace
from sinks.migrate import migrate
from tests.browser.browser_stack import MASTER, Stack, browser_paths
from tests.harness import REPO, CandorProcess, SinkThreads, free_port, wait_until


@pytest.fixture(scope="session")
def artifacts() -> Path:
    base = Path(os.environ.get("CANDOR_TEST_ARTIFACTS", REPO / ".candor" / "test-artifacts"))
    out = base / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[webdriver.Chrome, Path]]:
    """Headless chromium and its download directory."""
    paths = browser_paths()
    if paths is None:
        pytest.skip(
            "chromium and chromedriver are not installed (deploy/local/bootstrap.sh installs them)"
        )
    chromium, driver_path = paths
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,2200",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    yield driver, downloads
    driver.quit()


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    unique = uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp("portal-stack")
    port = free_port()
    s = replace(
        settings,
        home=tmp / "home",
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"browser-{unique}.", "partitions": 2},
        clickhouse={"database": f"candor_browser_{unique}"},
        streams={
            "session_gap_s": 5,
            "grace_s": 1,
            "minute_quiet_s": 3,
            "action_quiet_s": 1,
            "timer_interval_s": 1,
            "batch_within_s": 0.2,
        },
        portal={"public_url": f"http://127.0.0.1:{port}"},
    )
    create_topics(s)
    migrate(s)
    sinks = SinkThreads(s, MASTER, "browser-test-sink")
    logs = tmp / "logs"
    worker = CandorProcess(
        "worker",
        ["worker", "--metrics-port", "0", "--app-id", f"{s.kafka.topic_prefix}streams"],
        s,
        logs,
    )
    portal = CandorProcess("portal", ["portal", "serve", "--port", str(port)], s, logs)
    portal.env["CANDOR_PORTAL__PUBLIC_URL"] = s.portal.public_url
    portal.env["CANDOR_PORTAL__ERASE_SETTLE_S"] = "1"
    worker.start()
    portal.start()

    def portal_up() -> bool:
        try:
            with urllib.request.urlopen(f"{s.portal.public_url}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        wait_until(portal_up, 60, "portal serving", alive=lambda: portal.running, diag=portal.tail)
        yield Stack(s, s.portal.public_url, worker, portal)
    finally:
        portal.stop()
        worker.stop()
        sinks.close()
        admin = connect(s, database="")
        admin.command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")
        admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")
