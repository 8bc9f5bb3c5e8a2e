"""Rendered simulator frames: real PNGs whose ref is their hash, deterministic."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from producers.simulator.frames import SIZE, render_frame
from producers.simulator.simulator import Simulator


def _frames() -> list[dict[str, object]]:
    sim = Simulator(people=2, seed=7, start_ts=1_760_000_000_000_000)
    found = [e for e in sim.events(120.0) if e["payload"]["type"] == "ScreenFrame"]
    assert found
    return found[:5]


def test_a_simulated_frame_gets_pixels_and_the_ref_of_its_bytes() -> None:
    for event in _frames():
        data, rendered = render_frame(event)
        assert Image.open(io.BytesIO(data)).size == SIZE
        payload = rendered["payload"]
        assert payload["ref"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert (payload["width"], payload["height"]) == SIZE and len(payload["phash"]) == 16
        assert rendered["event_id"] == event["event_id"]
        assert render_frame(event)[0] == data
