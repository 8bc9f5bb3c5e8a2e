"""Issue 18, end to end as a new user runs it: HTTP gateway → `candor worker` →
`candor sink --all` → ClickHouse → `candor export`, on the real servers.

- a secret typed over 2-4 `KeyInput` events (every rule's sample, several cuts)
  is in no `events` row and in no `capture.clean` record, and the typing action
  holds it redacted;
- zero-width characters hide no secret, in typed text nor in a terminal command;
- a subject with activity metadata only keeps app names and loses window titles
  and URL hosts in `events`, `actions` and the export; titles need `window_titles`;
- events sent with seqs out of order are stored, marked and counted per device.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from candor.settings import Settings
from privacy.consent import grant
from privacy.redaction import redact
from privacy.scope import Scope
from sinks.export import export
from tests.harness import (
    REPO,
    CandorProcess,
    TopicReader,
    drop_pipeline,
    free_port,
    metric,
    private_pipeline,
    scrape,
    settings_env,
    wait_until,
)

ORG = "org-e2e"
ALL = [s.value for s in Scope]
# One labelled secret per rule, typed as a user would (written for Candor, not real).
TYPED_SECRETS = {
    "stripe_key": "sk_live_51HxQ2w3E4r5T6y7U8i9O0pA",
    "aws_access_key": "AKIAIOSFODNN7Q2XWZ3A",
    "github_token": "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "password": "password=Hunter-2-Hunter",
    "card_number": "4111 1111 1111 1111",
    "email": "ann.lee@example.com",
    "api_key": "api_key=Zx9Qw8Er7Ty6Ui5Op4As",
    "connection_string": "postgres://app:Pg-Pass-99@db.internal/app",
    "iban": "DE89 3704 0044 0532 0130 00",
}
TITLE = "Re: salary review - Ann Lee - Mail"
HOST = "mail.example.com"


def now_micros() -> int:
    return time.time_ns() // 1000


def _scalar(client: Any, sql: str, **params: Any) -> int:
    return int(client.query(sql, parameters=params).result_rows[0][0])


class Gateway:
    """`candor gateway` with one token per device (made by `candor gateway token add`)."""

    def __init__(self, settings: Settings, tmp_path: Path, devices: dict[str, str]) -> None:
        self.env = settings_env(settings)
        self.token_file = tmp_path / "tokens.json"
        self.tokens: dict[str, str] = {}
        for device, subject in devices.items():
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "candor.cli",
                    "gateway",
                    "--token-file",
                    str(self.token_file),
                    "token",
                    "add",
                    "--device",
                    device,
                    "--subject",
                    subject,
                    "--org",
                    ORG,
                ],
                cwd=REPO,
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            self.tokens[device] = out.stdout.splitlines()[0].strip()
        self.port = free_port()
        self.log = (tmp_path / "gateway.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "candor.cli",
                "gateway",
                "--port",
                str(self.port),
                "--token-file",
                str(self.token_file),
            ],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/healthz", timeout=2
                ) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(healthy, 60, "the gateway's /healthz", alive=lambda: self.proc.poll() is None)

    def post(self, device: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        body = json.dumps({"events": events}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/events",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.tokens[device]}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                reply: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise AssertionError(f"gateway answered {err.code}: {err.read()!r}") from err
        assert reply.get("accepted") == len(events), reply
        return reply

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


class Device:
    """Numbers a device's events; builds contract-form events at the current time."""

    def __init__(self, device_id: str, subject_id: str) -> None:
        self.device_id, self.subject_id = device_id, subject_id
        self.seq = 0
        self.ts = now_micros() - 120_000_000

    def event(
        self,
        payload: dict[str, Any],
        *,
        seq: int | None = None,
        app: str = "Mail",
        gap_ms: int = 20,
    ) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.ts += gap_ms * 1000
        return {
            "event_id": str(uuid.uuid4()),
            "org_id": ORG,
            "subject_id": self.subject_id,
            "device_id": self.device_id,
            "seq": seq,
            "ts": self.ts,
            "received_ts": None,
            "app": {"app_name": app, "window_title": TITLE, "url_host": HOST},
            "payload": payload,
            "redactions": [],
            "consent_version": None,
        }

    def typed(self, chunks: list[str]) -> list[dict[str, Any]]:
        """A typing burst of ``chunks``, then a click that ends it (3 s later)."""
        out = [
            self.event(
                {
                    "type": "KeyInput",
                    "key": None,
                    "text": c,
                    "modifiers": [],
                    "is_secure_field": False,
                    "count": max(1, len(c)),
                },
                app="Terminal",
            )
            for c in chunks
        ]
        out.append(
            self.event(
                {"type": "MouseClick", "button": "left", "x": 5, "y": 5, "double": False},
                app="Terminal",
                gap_ms=3000,
            )
        )
        return out

    def command(self, command: str) -> dict[str, Any]:
        return self.event(
            {"type": "TerminalCommand", "command": command, "exit_code": 0, "cwd_hash": "c1"},
            app="Terminal",
        )

    def click(self, seq: int | None = None) -> dict[str, Any]:
        return self.event(
            {"type": "MouseClick", "button": "left", "x": 1, "y": 2, "double": False}, seq=seq
        )


def cut(text: str, parts: int, first: int) -> list[str]:
    """``text`` in ``parts`` chunks, the first cut at ``first``, the others even."""
    rest = text[first:]
    size = max(1, len(rest) // (parts - 1))
    chunks = [text[:first]] + [rest[i * size : (i + 1) * size] for i in range(parts - 2)]
    chunks.append(rest[(parts - 2) * size :])
    assert "".join(chunks) == text and all(chunks), chunks
    return chunks


@dataclass
class Run:
    """What one pass through the whole pipeline left behind, for the tests to read."""

    settings: Settings
    sent: list[dict[str, Any]] = field(default_factory=list)
    bursts: list[str] = field(default_factory=list)
    clean: list[dict[str, Any]] = field(default_factory=list)
    worker_metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(
        default_factory=dict
    )
    exported: list[tuple[str, str | None]] = field(default_factory=list)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connect(self.settings).query(sql, parameters=params).result_rows]

    def scalar(self, sql: str, **params: Any) -> int:
        return int(self.query(sql, **params)[0][0])


@pytest.fixture(scope="module")
def run(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Send every case through gateway, worker and sinks once; stop them; yield."""
    tmp_path = tmp_path_factory.mktemp("gateway-privacy")
    s = private_pipeline(settings, uuid.uuid4().hex[:10], tmp_path / "home")
    out = Run(s)
    try:
        _pipeline(out, tmp_path)
        yield out
    finally:
        drop_pipeline(s)


def _pipeline(run: Run, tmp_path: Path) -> None:
    s = run.settings
    full, meta, train, seqs = (
        Device("d-full", "s-full"),
        Device("d-meta", "s-meta"),
        Device("d-train", "s-train"),
        Device("d-seq", "s-full"),
    )
    now = now_micros()
    grant_many(
        s,
        [
            grant(None, ALL, "e2e", now, subject_id="s-full", org_id=ORG),
            grant(None, ["activity_metadata"], "e2e", now, subject_id="s-meta", org_id=ORG),
            grant(
                None,
                [x for x in ALL if x != "window_titles"],
                "e2e",
                now,
                subject_id="s-train",
                org_id=ORG,
            ),
        ],
        "e2e",
    )
    gateway = Gateway(s, tmp_path, {d.device_id: d.subject_id for d in (full, meta, train, seqs)})
    logs = tmp_path / "logs"
    worker_port = free_port()
    worker = CandorProcess(
        "worker",
        [
            "worker",
            "--metrics-port",
            str(worker_port),
            "--app-id",
            f"{s.kafka.topic_prefix}streams",
        ],
        s,
        logs,
    )
    sink = CandorProcess(
        "sink", ["sink", "--all", "--max-age", "0.5", "--metrics-port", str(free_port())], s, logs
    )
    procs = (worker, sink)
    clean = TopicReader(s, s.kafka.topic("capture.clean"))
    try:
        # 1. secrets of every rule typed over 2, 3 and 4 events, cut at several places
        sent = run.sent
        for secret in TYPED_SECRETS.values():
            for parts in (2, 3, 4):
                for first in sorted({1, len(secret) // 3, len(secret) - parts + 1}):
                    sent += full.typed(cut(secret, parts, first))
                    run.bursts.append(secret)
        # 2. zero-width characters in typed text and in a terminal command
        zw_typed = "key AKIA\u200bZX81QW27PLM4N5BC"
        sent += full.typed(cut(zw_typed, 3, 9))
        run.bursts.append(zw_typed)
        sent.append(full.command("aws configure set aws_access_key_id AKIA\u200dQW27PLM4N5BCZX81"))
        for i in range(0, len(sent), 200):
            gateway.post("d-full", sent[i : i + 200])
        # 3. titles: metadata only vs. training use without window_titles
        for device in (meta, train):
            events = [*device.typed(["hello ", "world"]), device.click(), device.command("ls -la")]
            gateway.post(device.device_id, events)
            sent += events
        # 4. seq regressions: 5, 3, 4 then 9, 7, 8, 6
        for batch in ([5, 3, 4], [9, 7, 8, 6]):
            events = [seqs.click(n) for n in batch]
            gateway.post("d-seq", events)
            sent += events

        worker.start()
        sink.start()
        diag = lambda: "\n".join(p.tail() for p in procs)  # noqa: E731
        alive = lambda: all(p.running for p in procs)  # noqa: E731
        wait_until(
            lambda: run.scalar("SELECT uniqExact(event_id) FROM events") >= len(sent),
            240,
            "every event in ClickHouse",
            alive=alive,
            diag=diag,
        )
        typing = len(run.bursts) + 2  # d-full's bursts, one each of d-meta and d-train
        wait_until(
            lambda: run.scalar("SELECT count() FROM actions FINAL WHERE kind = 'typing'") >= typing,
            180,
            "every typing action in ClickHouse",
            alive=alive,
            diag=diag,
        )
        wait_until(
            lambda: (clean.poll(), len(clean.events()) >= len(sent))[1],
            60,
            "capture.clean read back",
        )
        run.clean = clean.events()
        run.worker_metrics = scrape(worker_port)
        start = min(e["ts"] for e in sent) - 3_600_000_000
        result = export(s, start, now_micros() + 3_600_000_000, tmp_path / "export")
        run.exported = [
            (t["subject_id"], step["window_title"])
            for t in pq.read_table(result.shards).to_pylist()
            for step in t["actions"]
        ]
    finally:
        for p in procs:
            p.stop()
        gateway.stop()
        clean.close()


def test_typed_secrets_split_over_events_are_in_no_per_event_row(run: Run) -> None:
    assert (
        run.scalar("SELECT count() FROM events WHERE event_type = 'KeyInput' AND text IS NOT NULL")
        == 0
    )
    keys = {
        r[0]
        for r in run.query("SELECT DISTINCT key_name FROM events WHERE event_type = 'KeyInput'")
    }
    assert keys <= {None, "Character"}, keys
    for record in run.clean:  # capture.clean
        if record["payload"]["type"] == "KeyInput":
            assert record["payload"]["text"] is None
            key = record["payload"]["key"]  # a key class, encrypted like any key name
            assert key is None or key.startswith("enc1:"), key
    texts = [
        r[0]
        for r in run.query(
            "SELECT text FROM actions FINAL WHERE kind = 'typing' AND subject_id = 's-full'"
        )
    ]
    assert sorted(texts) == sorted(redact(b).text for b in run.bursts)
    stored = "\n".join(str(v) for row in run.query("SELECT * FROM events") for v in row)
    stored += "\n".join(texts)
    for secret in TYPED_SECRETS.values():
        assert secret not in stored
    for fragment in ("sk_live_51Hx", "Hunter-2", "Pg-Pass-99", "Zx9Qw8Er7T", "ann.lee@"):
        assert fragment not in stored


def test_zero_width_characters_hide_no_secret(run: Run) -> None:
    stored = "\n".join(str(v) for row in run.query("SELECT * FROM events") for v in row)
    stored += "\n".join(str(r[0]) for r in run.query("SELECT text FROM actions"))
    for secret in ("AKIAZX81QW27PLM4N5BC", "AKIAQW27PLM4N5BCZX81", "AKIA\u200b", "AKIA\u200d"):
        assert secret not in stored
    assert (
        run.scalar(
            "SELECT count() FROM events WHERE command = 'aws configure set "
            "aws_access_key_id <SECRET:aws_access_key>'"
        )
        == 1
    )
    assert (
        run.scalar("SELECT count() FROM actions FINAL WHERE text = 'key <SECRET:aws_access_key>'")
        == 1
    )


def test_window_titles_and_hosts_need_their_own_scope(run: Run) -> None:
    rows = run.query(
        "SELECT subject_id, countIf(window_title IS NOT NULL), "
        "countIf(url_host IS NOT NULL), countIf(app_name != '') "
        "FROM events GROUP BY subject_id"
    )
    by_subject = {r[0]: r[1:] for r in rows}
    assert by_subject["s-meta"][:2] == (0, 0) and by_subject["s-meta"][2] > 0
    assert by_subject["s-train"][:2] == (0, 0) and by_subject["s-train"][2] > 0
    assert by_subject["s-full"][0] > 0 and by_subject["s-full"][1] > 0
    assert (
        run.scalar(
            "SELECT count() FROM actions WHERE subject_id IN ('s-meta', 's-train') "
            "AND window_title IS NOT NULL"
        )
        == 0
    )
    assert (
        run.scalar(
            "SELECT count() FROM actions WHERE subject_id = 's-full' AND window_title = {t:String}",
            t=TITLE,
        )
        > 0
    )
    subjects = {subject for subject, _ in run.exported}
    assert {"s-train", "s-full"} <= subjects and "s-meta" not in subjects
    assert all(title is None for subject, title in run.exported if subject == "s-train")
    assert any(title == TITLE for subject, title in run.exported if subject == "s-full")


def test_seq_regressions_are_stored_marked_and_counted(run: Run) -> None:
    assert run.scalar("SELECT count() FROM events WHERE device_id = 'd-seq'") == 7
    marked = sorted(
        r[0]
        for r in run.query(
            "SELECT seq FROM events WHERE device_id = 'd-seq' AND has(redactions, 'seq_regression')"
        )
    )
    assert marked == [3, 4, 6, 7, 8]
    listed = sorted(
        r[0] for r in run.query("SELECT seq FROM seq_regressions WHERE device_id = 'd-seq'")
    )
    assert listed == [3, 4, 6, 7, 8]
    samples = run.worker_metrics
    assert metric(samples, "candor_worker_seq_regressions_total", device_id="d-seq") == 5
    assert metric(samples, "candor_worker_seq_regressions_total", device_id="d-full") == 0
