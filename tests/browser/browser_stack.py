"""What the browser tests share: the module's pipeline and portal (`Stack`), where
chromium is, axe-core injected into a page, and waiting for a page to settle."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver

from candor.settings import Settings
from tests.harness import CandorProcess, wait_until

MASTER = bytes(range(3, 35))


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"


def browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return chromium, driver


@dataclass
class Stack:
    """The module's pipeline and portal."""

    settings: Settings
    portal_url: str
    worker: CandorProcess
    portal: CandorProcess
    state: dict[str, Any] = field(default_factory=dict)


def run_axe(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Inject axe-core into the current page and return its violations."""
    driver.execute_script(AXE.read_text())
    found: list[dict[str, Any]] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return found


def settle(what: str, read: Any, timeout: float = 60) -> Any:
    """Wait until ``read()`` returns the same value twice, 2 s apart; return it."""
    last: list[Any] = [object()]

    def same() -> bool:
        now = read()
        ok = bool(now == last[0])
        last[0] = now
        if not ok:
            time.sleep(2)
        return ok

    wait_until(same, timeout, what)
    return last[0]
