"""A device's entry written with the text of its last buffer (`MarksMemo`) is
the very bytes of one written from scratch, batch after batch, while the memo
saves encoding the marks a previous entry already wrote."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from producers.simulator.simulator import Simulator
from streams.activity import ActivityConfig, DeviceActivity
from streams.device_state import MarksMemo, decode_state, encode_state

CFG = ActivityConfig()
START = 1_700_000_000_000_000


def _devices(seed: int, n: int) -> dict[str, list[dict[str, Any]]]:
    sim = Simulator(people=3, seed=seed, start_ts=START)
    per_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, event in enumerate(sim.events(365 * 86_400.0)):
        if i >= n:
            break
        per_device[str(event["device_id"])].append(dict(event))
    return per_device


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_entry_written_with_the_memo_is_the_entry_written_without(seed: int) -> None:
    rng = random.Random(seed)
    carried = 0
    for events in _devices(seed, 3000).values():
        state, memo = DeviceActivity(), MarksMemo()
        i = 0
        while i < len(events):
            batch = events[i : i + rng.randint(1, 40)]
            i += len(batch)
            if rng.random() < 0.2:
                rng.shuffle(batch)  # out of order: marks go into the middle of the buffer
            now = max(e["ts"] for e in batch) + rng.randint(0, 5_000_000)
            state.fold(batch, now, CFG)
            if rng.random() < 0.1:
                state.tick(now + rng.randint(0, 120_000_000), CFG)
            before = {id(text) for _, text in memo.runs}
            entry = encode_state(state, memo)
            assert entry == encode_state(state)
            carried += sum(id(text) in before for _, text in memo.runs)
            if rng.random() < 0.1:  # evicted and read back: equal marks, new objects
                state = decode_state(entry)
            assert decode_state(entry).to_dict() == state.to_dict()
    assert carried > 0  # the memo did copy text it wrote before
