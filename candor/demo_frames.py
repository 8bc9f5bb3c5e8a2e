"""The demo's screen frames: a gateway with its frame route, a device token per
consenting person, the frames' fate, and the computer-use export's steps.

`candor demo` (`candor.demo`) gives the first ``--frames-per-person`` screen
frames of each person who consents to ``screen_frames`` pixels
(`producers.simulator.upload.FramingSink`), put through a `candor gateway`
child started here (OCR redaction in one worker process, frames encrypted into
the frame store). People without that scope get no frames. At the end it shows
how many frames were stored and what was blacked out, runs the computer-use
export and saves a few of its steps' images as PNG.
"""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candor.settings import Settings
from schemas.extras import MissingExtra

__all__ = ["DemoGateway", "save_step_images", "show_computer_use", "show_frames", "start_gateway"]


@dataclass
class DemoGateway:
    """The demo's gateway child and each framed device's token (in memory only)."""

    child: Any  # candor.demo.Child
    url: str
    tokens: dict[str, str]

    def serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    settings: Settings, org_id: str, devices: Sequence[Any], logdir: Path, timeout_s: float = 90.0
) -> DemoGateway | None:
    """Start `candor gateway` with the frame route on a free port, a fresh token
    per device (``devices``: `producers.simulator.SimulatedDevice`) in
    ``<home>/demo/gateway-tokens.json`` (hashes only, 0600); wait until it
    serves. None (reported) when it did not: the demo goes on without frames."""
    from candor.demo import Child
    from producers.gateway.auth import DeviceIdentity, TokenFile

    token_file = settings.home / "demo" / "gateway-tokens.json"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.unlink(missing_ok=True)  # this run's devices only
    store = TokenFile(token_file)
    expires = int((time.time() + 86_400) * 1_000_000)
    tokens = {
        d.device_id: store.add(DeviceIdentity(d.device_id, d.subject_id, org_id, expires))
        for d in devices
    }
    port = _free_port()
    child = Child(
        "gateway",
        [
            "gateway",
            "--port",
            str(port),
            "--token-file",
            str(token_file),
            "--topic",
            settings.kafka.topic("capture.events"),
        ],
        logdir,
        {"CANDOR_FRAMES__GATEWAY": "true", "CANDOR_FRAMES__OCR_WORKERS": "1"},
    )
    gateway = DemoGateway(child, f"http://127.0.0.1:{port}", tokens)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if gateway.serving():
            return gateway
        if not child.running():
            print(child.report(), flush=True)
            return None
        time.sleep(0.3)
    print(f"  the gateway did not serve within {timeout_s:.0f} s; see {child.log}")
    child.stop()
    return None


def show_frames(settings: Settings, report: Any, subjects: Sequence[str]) -> int:
    """Print what became of the rendered frames (``report``:
    `producers.simulator.upload.FrameUploadReport`) and count them in the frame
    store; return the frames stored for ``subjects``."""
    from backends.frame_store import open_frame_store

    store = open_frame_store(settings.frames, settings.home)
    in_store = sum(len(store.list(s)) for s in subjects)
    boxes = sum(report.redactions.values())
    rules = ", ".join(f"{rule} {n}" for rule, n in sorted(report.redactions.items())) or "none"
    print(
        f"  {report.rendered} frames rendered for {len(subjects)} people with screen_frames; "
        f"{report.stored} stored, {report.duplicates} already there, {report.refused} "
        f"refused{' ' + json.dumps(report.refusals) if report.refusals else ''}"
        f"{f', {report.unfinished} unfinished' if report.unfinished else ''}"
    )
    print(f"  OCR redaction blacked out {boxes} word boxes before storage ({rules})")
    print(f"  frame store ({settings.frames.backend}): {in_store} encrypted frames of these people")
    return in_store


def save_step_images(
    shards: Sequence[Path], out: Path, limit: int = 3
) -> list[tuple[Path, dict[str, Any]]]:
    """Save the images of the first ``limit`` steps that have one, from the
    export's Parquet ``shards``, as PNG files in ``out``; return each file
    with its step's row (without the image bytes)."""
    from PIL import Image

    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as err:
        raise MissingExtra.of(err, "export", "reading the computer-use export") from err

    saved: list[tuple[Path, dict[str, Any]]] = []
    out.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        for row in pq.read_table(shard).to_pylist():
            if row.get("image") is None:
                continue
            path = out / f"step-{str(row['episode_id'])[:8]}-{row['step_index']:03d}.png"
            Image.open(io.BytesIO(row["image"]["bytes"])).save(path, "PNG")
            saved.append((path, {k: v for k, v in row.items() if k != "image"}))
            if len(saved) >= limit:
                return saved
    return saved


def show_computer_use(settings: Settings, start_ts: int, end_ts: int, out: Path) -> Any:
    """Run the computer-use export of ``[start_ts, end_ts)`` into ``out``, print
    its counts and a few steps, their images saved as PNG; return the
    `sinks.export.ExportResult`."""
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import load_keyset
    from backends.frame_store import open_frame_store
    from candor.settings import master_key_bytes
    from sinks.export_frames import export_computer_use

    client = connect(settings)
    result = export_computer_use(
        settings,
        start_ts,
        end_ts,
        out,
        client=client,
        store=open_frame_store(settings.frames, settings.home),
        keys=load_keyset(client, master_key_bytes(settings)),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    print(
        f"  {manifest['episodes']} episodes, {manifest['steps']} steps, "
        f"{manifest['steps_with_image']} with a screenshot ({manifest['frames']} frames) "
        f"-> {out}"
    )
    print(f"  dataset card: {out / 'README.md'}")
    for path, row in save_step_images(result.shards, out / "steps"):
        print(
            f"  step {row['step_index']:>3} of episode {str(row['episode_id'])[:8]}  "
            f"{row['action_code'].splitlines()[0][:48]:<48}  {path}"
        )
    return result
