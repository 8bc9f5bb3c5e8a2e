"""`candor demo` with screen frames, on a private pipeline of the shared servers:
the frames of people consenting to screen_frames go through the gateway (OCR
redaction, encryption) into the frame store, nobody else's do, and the
computer-use export's steps carry them as images, a few saved as PNG."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from pydantic import SecretStr

from backends.frame_store import open_frame_store
from candor import stack
from candor.settings import Settings, child_env, replace
from producers.simulator.simulator import Simulator
from tests.harness import REPO, free_port

pytestmark = pytest.mark.e2e

SEED = 4242


def test_demo_uploads_frames_of_consenting_people_and_exports_them(
    pipeline_settings: Settings,
) -> None:
    s = replace(
        pipeline_settings,
        privacy={"master_key": SecretStr(bytes(range(3, 35)).hex())},
        portal={"public_url": f"http://127.0.0.1:{free_port()}"},
    )
    env = {**child_env(s, dict(os.environ)), "CANDOR_PORTAL__PUBLIC_URL": s.portal.public_url}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "candor.cli",
                "demo",
                "--people",
                "4",
                "--rate",
                "300",
                "--duration",
                "8",
                "--seed",
                str(SEED),
                "--frames-per-person",
                "2",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        stack.stop_portal(s)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-3000:]

    rendered = re.search(
        r"(\d+) frames rendered for 2 people with screen_frames; (\d+) "
        r"stored, (\d+) already there, (\d+) refused",
        out,
    )
    assert rendered is not None, out[-4000:]
    assert rendered.groups() == ("4", "4", "0", "0")
    assert re.search(r"OCR redaction blacked out \d+ word boxes", out)

    devices = Simulator(4, SEED, 0).devices
    store = open_frame_store(s.frames, s.home)
    assert [len(store.list(d.subject_id)) for d in devices] == [0, 0, 2, 2]

    steps = re.search(
        r"(\d+) episodes, (\d+) steps, (\d+) with a screenshot \((\d+) frames\) "
        r"-> (\S+)",
        out,
    )
    assert steps is not None, out[-4000:]
    with_image, frames, export_dir = int(steps.group(3)), int(steps.group(4)), Path(steps.group(5))
    assert with_image > 0 and 1 <= frames <= 4
    rows = [
        r
        for shard in sorted((export_dir / "data").glob("*.parquet"))
        for r in pq.read_table(shard).to_pylist()
    ]
    imaged = [r for r in rows if r["image"] is not None]
    assert len(imaged) == with_image
    framed = {devices[2].device_id, devices[3].device_id}
    assert {r["device_id"] for r in imaged} <= framed  # pixels of consenting people only
    saved = sorted((export_dir / "steps").glob("*.png"))
    assert saved and all(Image.open(p).size == (960, 540) for p in saved)
    assert all(str(p) in out for p in saved)
