"""The portal as a person uses it, in headless chromium against the real stack.

In order (the tests share one pipeline and one browser): sign in with an
invite; the numbers on the page equal ClickHouse; revoke a content scope and
see the worker drop that content for new events; download the data and open
it; erase and see the receipt. Every page is checked with axe-core (no serious
or critical violation) and saved as a screenshot.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from candor.portal.cli import invite_link
from privacy.consent import ConsentPolicy
from privacy.scope import Scope
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import Simulator
from schemas.codec import encode_event
from sinks.export import export
from tests.browser.browser_stack import Stack, run_axe, settle
from tests.harness import wait_until

pytestmark = pytest.mark.e2e

Browser = tuple[webdriver.Chrome, Path]


def now_micros() -> int:
    return time.time_ns() // 1000


def send(stack: Stack, events: list[dict[str, Any]]) -> None:
    s = stack.settings
    producer = Producer(producer_config(s.kafka.bootstrap))
    for e in events:
        producer.produce(s.kafka.topic("capture.events"), key=e["device_id"], value=encode_event(e))
        producer.poll(0)
    assert producer.flush(30) == 0


def scalar(stack: Stack, sql: str, subject: str) -> Any:
    return connect(stack.settings).query(sql, parameters={"s": subject}).result_rows[0][0]


def check_page(driver: webdriver.Chrome, artifacts: Path, name: str) -> None:
    """Screenshot the page and assert axe finds no serious or critical violation."""
    driver.save_screenshot(str(artifacts / f"{name}.png"))
    violations = run_axe(driver)
    (artifacts / f"{name}.axe.json").write_text(json.dumps(violations, indent=1))
    bad = [
        (v["id"], v["impact"], v.get("help"), [n.get("target") for n in v["nodes"]][:3])
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]
    assert not bad, f"axe on {name}: {bad}"


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, Any]:
    """Two consenting people, the first half of their events landed."""
    sim = Simulator(2, seed=16, start_ts=now_micros() - 150_000_000)
    alice, bob = (d.subject_id for d in sim.devices)
    grant_many(
        stack.settings,
        [
            ConsentPolicy(x, "org-sim", 1, frozenset(Scope), "hr-onboarding", now_micros(), "hired")
            for x in (alice, bob)
        ],
        "browser-test",
    )
    events = list(sim.events(120))
    split = sim.start_ts + 70_000_000
    first = [e for e in events if e["ts"] < split]
    second = [e for e in events if e["ts"] >= split]
    typed = [
        e
        for e in second
        if e["subject_id"] == alice
        and e["payload"]["type"] == "KeyInput"
        and e["payload"].get("text")
    ]
    assert typed, "the simulation gives Alice typed text after the split"
    send(stack, first)
    n_alice = sum(1 for e in first if e["subject_id"] == alice)
    count = "SELECT uniqExact(event_id) FROM events WHERE subject_id = {s:String}"
    wait_until(
        lambda: scalar(stack, count, alice) >= n_alice,
        120,
        "Alice's first events",
        alive=lambda: stack.worker.running,
        diag=stack.worker.tail,
    )
    wait_until(
        lambda: (
            scalar(stack, "SELECT count() FROM sessions WHERE subject_id = {s:String}", alice) >= 1
            and scalar(
                stack, "SELECT count() FROM activity_minutes WHERE subject_id = {s:String}", alice
            )
            >= 1
        ),
        120,
        "Alice's sessions and minutes",
        alive=lambda: stack.worker.running,
        diag=stack.worker.tail,
    )
    return {
        "alice": alice,
        "bob": bob,
        "split": split,
        "second": second,
        "bob_events": sum(1 for e in events if e["subject_id"] == bob),
    }


def test_sign_in_with_an_invite(
    stack: Stack, people: dict[str, Any], browser: Browser, artifacts: Path
) -> None:
    driver, _ = browser
    link = invite_link(stack.settings, people["alice"])
    driver.get(link)
    check_page(driver, artifacts, "01-signin")
    driver.find_element(By.ID, "signin").click()
    WebDriverWait(driver, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-metric='total-events']"))
    )
    assert people["alice"] in driver.find_element(By.CSS_SELECTOR, ".who").text
    cookie = driver.get_cookie("candor_portal")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # keyboard: the first Tab reaches the skip link, Enter moves to the content
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Skip to content"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    assert driver.switch_to.active_element.get_attribute("id") == "main"


def test_the_numbers_on_the_page_equal_clickhouse(
    stack: Stack, people: dict[str, Any], browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    driver, _ = browser
    alice, bob = people["alice"], people["bob"]
    queries = {
        "total-events": "SELECT uniqExact(event_id) FROM events WHERE subject_id = {s:String}",
        "total-sessions": "SELECT count() FROM sessions FINAL WHERE subject_id = {s:String}",
        "total-active-seconds": "SELECT round(sum(seconds)) FROM activity_minutes ARRAY JOIN "
        "mapValues(app_seconds) AS seconds WHERE subject_id = "
        "{s:String}",
    }
    expected = settle(
        "Alice's rows settled",
        lambda: {k: int(scalar(stack, q, alice)) for k, q in queries.items()},
    )
    day = timedelta(days=1)
    held = export(
        stack.settings,
        datetime.now(UTC) - day,
        datetime.now(UTC) + day,
        tmp_path / "export",
        fmt="jsonl",
    )
    assert held.subjects == 2  # both consented to training use
    shown: dict[str, int] = {}
    for _ in range(4):  # a session the worker closes late may land between two reads
        driver.get(stack.portal_url + "/")
        shown = {
            k: int(driver.find_element(By.CSS_SELECTOR, f"[data-metric='{k}']").text)
            for k in queries
        }
        expected = {k: int(scalar(stack, q, alice)) for k, q in queries.items()}
        if shown == expected:
            break
        time.sleep(3)
    assert shown == expected
    assert expected["total-events"] > 0 and expected["total-sessions"] > 0
    per_day = {
        el.get_attribute("data-day"): int(el.text)
        for el in driver.find_elements(By.CSS_SELECTOR, "[data-metric='day-events']")
    }
    rows = (
        connect(stack.settings)
        .query(
            "SELECT toString(toDate(ts)), uniqExact(event_id) FROM events WHERE subject_id = "
            "{s:String} GROUP BY 1",
            parameters={"s": alice},
        )
        .result_rows
    )
    assert per_day == {str(d): int(n) for d, n in rows}
    redactions = {
        el.get_attribute("data-rule"): int(el.text)
        for el in driver.find_elements(By.CSS_SELECTOR, "[data-metric='redaction']")
    }
    rows = (
        connect(stack.settings)
        .query(
            "SELECT rule, uniqExact(event_id) FROM events ARRAY JOIN redactions AS rule "
            "WHERE subject_id = {s:String} GROUP BY rule",
            parameters={"s": alice},
        )
        .result_rows
    )
    assert redactions == {str(r): int(n) for r, n in rows}
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg[role='img'] title")) == 2
    shown_exports = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#exports a")]
    assert shown_exports == [held.export_id]
    assert bob not in driver.page_source
    check_page(driver, artifacts, "02-overview")
    driver.find_element(By.LINK_TEXT, held.export_id).click()
    assert held.export_id in driver.find_element(By.CSS_SELECTOR, "dl.record").text
    driver.get(stack.portal_url + "/events")
    assert bob not in driver.page_source
    check_page(driver, artifacts, "03-events")


def test_revoking_a_content_scope_drops_that_content_for_new_events(
    stack: Stack, people: dict[str, Any], browser: Browser, artifacts: Path
) -> None:
    driver, _ = browser
    alice = people["alice"]
    driver.get(stack.portal_url + "/consent")
    check_page(driver, artifacts, "04-consent")
    driver.find_element(By.ID, "revoke-keystroke_content").click()
    notice = WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "notice")))
    assert "keystroke_content revoked (consent version 2)" in notice.text
    assert (
        driver.find_element(By.CSS_SELECTOR, "[data-state='keystroke_content']").text
        == "not granted"
    )
    wait_until(
        lambda: (
            scalar(
                stack,
                "SELECT max(version) FROM consent_ledger WHERE subject_id = {s:String}",
                alice,
            )
            == 2
        ),
        60,
        "the revocation in the ledger",
    )
    driver.refresh()  # the change was redirected to a GET: reloading sends nothing again
    history = driver.find_element(By.ID, "history").text
    assert (
        scalar(
            stack, "SELECT max(version) FROM consent_ledger WHERE subject_id = {s:String}", alice
        )
        == 2
    )
    assert f"portal:{alice}" in history and "changed by the person in the portal" in history
    check_page(driver, artifacts, "05-consent-revoked")
    time.sleep(3)  # workers apply a consent change within seconds
    send(stack, people["second"])
    after = f"ts >= fromUnixTimestamp64Micro({people['split']}, 'UTC')"
    n_after = sum(1 for e in people["second"] if e["subject_id"] == alice)
    wait_until(
        lambda: (
            scalar(
                stack,
                f"SELECT uniqExact(event_id) FROM events WHERE "
                f"subject_id = {{s:String}} AND {after}",
                alice,
            )
            >= n_after
        ),
        120,
        "Alice's later events",
        alive=lambda: stack.worker.running,
        diag=stack.worker.tail,
    )
    content = (
        "SELECT countIf(text IS NOT NULL OR key_name IS NOT NULL), count() FROM events "
        "WHERE subject_id = {s:String} AND event_type = 'KeyInput' AND "
    )
    kept_after, keys_after = (
        connect(stack.settings).query(content + after, parameters={"s": alice}).result_rows[0]
    )
    kept_before, _ = (
        connect(stack.settings)
        .query(content + f"NOT ({after})", parameters={"s": alice})
        .result_rows[0]
    )
    assert keys_after > 0 and kept_after == 0  # the keystrokes kept as activity, no content
    assert kept_before > 0  # content kept under the old consent stays until erasure
    typed = (
        "SELECT countIf(text IS NOT NULL AND text != '') FROM actions WHERE subject_id = "
        "{s:String} AND kind = 'typing' AND start_ts >= "
        f"fromUnixTimestamp64Micro({people['split']}, 'UTC')"
    )
    assert scalar(stack, typed, alice) == 0  # no typed text in new actions either
    driver.get(stack.portal_url + "/events")
    newest_key = driver.find_elements(By.XPATH, "//table[@id='events']//tr[td[2]='KeyInput']")
    assert newest_key and newest_key[0].find_element(By.CSS_SELECTOR, ".content").text == ""


def test_download_all_my_data_and_open_it(
    stack: Stack, people: dict[str, Any], browser: Browser, artifacts: Path
) -> None:
    driver, downloads = browser
    alice = people["alice"]
    driver.get(stack.portal_url + "/download")
    check_page(driver, artifacts, "06-download")
    driver.find_element(By.ID, "download").click()
    WebDriverWait(driver, 120).until(
        lambda d: d.find_element(By.ID, "progress-text").get_attribute("data-done") == "1"
    )
    assert driver.find_element(By.ID, "progress").get_attribute("value") == "100"
    driver.save_screenshot(str(artifacts / "07-download-done.png"))
    target = downloads / "candor-my-data.zip"
    wait_until(
        lambda: target.exists() and not list(downloads.glob("*.crdownload")),
        60,
        "the zip in the download directory",
    )
    archive = zipfile.ZipFile(io.BytesIO(target.read_bytes()))
    names = set(archive.namelist())
    assert {
        "README.md",
        "summary.json",
        "tables/events.parquet",
        "tables/events.jsonl",
        "tables/sessions.parquet",
        "tables/consent_ledger.parquet",
    } <= names
    events = pq.read_table(io.BytesIO(archive.read("tables/events.parquet")))
    assert set(events.column("subject_id").to_pylist()) == {alice}
    assert events.num_rows == scalar(
        stack, "SELECT count() FROM events FINAL WHERE subject_id = {s:String}", alice
    )
    summary = json.loads(archive.read("summary.json"))
    assert [c["version"] for c in summary["consent_history"]] == [1, 2]
    assert "keystroke_content" not in summary["consent_now"]
    assert people["bob"].encode() not in b"".join(archive.read(n) for n in names)


def test_erase_and_see_the_receipt(
    stack: Stack, people: dict[str, Any], browser: Browser, artifacts: Path
) -> None:
    driver, _ = browser
    alice, bob = people["alice"], people["bob"]
    count = "SELECT uniqExact(event_id) FROM events WHERE subject_id = {s:String}"
    wait_until(
        lambda: scalar(stack, count, bob) >= people["bob_events"],
        120,
        "all of Bob's events",
        alive=lambda: stack.worker.running,
        diag=stack.worker.tail,
    )
    driver.get(stack.portal_url + "/erase")
    check_page(driver, artifacts, "08-erase-confirm")
    box = driver.find_element(By.ID, "confirm")
    box.send_keys(Keys.SPACE)  # the confirmation works from the keyboard
    assert box.is_selected()
    driver.find_element(By.ID, "erase").click()
    WebDriverWait(driver, 120).until(ec.presence_of_element_located((By.ID, "erased")))
    check_page(driver, artifacts, "09-receipt")
    erasure_id = driver.find_element(By.ID, "erasure-id").text
    detail = scalar(
        stack, "SELECT detail FROM audit_log WHERE action = 'erase' AND subject = {s:String}", alice
    )
    assert json.loads(detail)["erasure_id"] == erasure_id
    link = driver.find_element(By.ID, "receipt-download").get_attribute("href") or ""
    assert link.startswith("data:application/json;base64,")
    assert scalar(stack, "SELECT count() FROM events WHERE subject_id = {s:String}", alice) == 0
    assert scalar(stack, count, bob) == people["bob_events"]  # nobody else's data touched
    driver.get(stack.portal_url + "/")
    assert "Please sign in" in driver.page_source  # the session ended
    driver.save_screenshot(str(artifacts / "10-signed-out.png"))
