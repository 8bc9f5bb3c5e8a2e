"""A simulated workforce publishes each device under its own identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producers.sdk.client import CaptureClient
from producers.simulator.devices import DeviceClients, UnknownDevice
from producers.simulator.simulator import Simulator, run_simulation
from tests.unit.producers.producers_fakes import FakeBroker


def test_each_device_publishes_through_a_client_of_its_own(tmp_path: Path) -> None:
    sim = Simulator(people=3, seed=7, start_ts=1_700_000_000_000_000)
    brokers: dict[str, FakeBroker] = {}
    opened: list[tuple[str, str, Path]] = []

    def open_client(device: Any, spool_dir: Path) -> CaptureClient:
        opened.append((device.device_id, device.subject_id, spool_dir))
        broker = brokers[device.device_id] = FakeBroker()
        return CaptureClient(
            "unused:9092",
            spool_dir=spool_dir,
            org_id=sim.org_id,
            subject_id=device.subject_id,
            device_id=device.device_id,
            transport_factory=broker.transport,
            spool_fsync="never",
        )

    with DeviceClients(sim.devices, tmp_path, open_client) as clients:
        run_simulation(sim, clients, duration_s=600)
        assert clients.close() == 0

    devices = {d.device_id: d.subject_id for d in sim.devices}
    assert {(d, s) for d, s, _ in opened} == set(devices.items())
    assert {p for _, _, p in opened} == {tmp_path / d for d in devices}
    for device_id, broker in brokers.items():
        # every record a device's client delivered is keyed by that device only
        assert broker.delivered
        assert {key for key, _ in broker.delivered} == {device_id.encode()}


def test_an_event_of_an_unknown_device_is_refused(tmp_path: Path) -> None:
    sim = Simulator(people=1, seed=1, start_ts=1_700_000_000_000_000)
    with (
        DeviceClients(sim.devices, tmp_path, lambda *_: pytest.fail("opened")) as clients,
        pytest.raises(UnknownDevice),
    ):
        clients.publish({"device_id": "not-simulated"})
