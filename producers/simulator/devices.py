"""Publishing a simulated workforce the way real devices publish: each
simulated device through its own `CaptureClient`, under its own identity.

A `CaptureClient` serves one device of one subject (its Kafka client id, spool
and sequence file are that device's), so a run of many simulated people opens
one client per device, each spooling under ``<spool_root>/<device_id>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from producers.sdk.client import CaptureClient
from producers.sdk.envelope import Event
from producers.simulator.simulator import SimulatedDevice

OpenClient = Callable[[SimulatedDevice, Path], CaptureClient]


class UnknownDevice(KeyError):
    """An event names a device that is not one of the simulated devices."""


class DeviceClients:
    """An `EventSink` (see `run_simulation`) that publishes each event through
    the client of its ``device_id``, opened on the device's first event by
    ``open_client(device, spool_root / device_id)``.

    Not thread-safe. `close` closes every client and returns the records they
    left unacknowledged (in their spools), summed."""

    def __init__(
        self, devices: Iterable[SimulatedDevice], spool_root: Path, open_client: OpenClient
    ) -> None:
        self._devices = {d.device_id: d for d in devices}
        self._spool_root = spool_root
        self._open_client = open_client
        self.clients: dict[str, CaptureClient] = {}

    def publish(self, event: Event) -> None:
        """Publish ``event`` through its device's client. Raises `UnknownDevice`
        for a device that is not simulated, else what `CaptureClient.publish` raises."""
        device_id = str(event["device_id"])
        client = self.clients.get(device_id)
        if client is None:
            device = self._devices.get(device_id)
            if device is None:
                raise UnknownDevice(device_id)
            client = self.clients[device_id] = self._open_client(
                device, self._spool_root / device_id
            )
        client.publish(event)

    def close(self, timeout: float = 10.0) -> int:
        """Close every client (each waits up to ``timeout`` s for its acks);
        returns the records left unacknowledged, summed. Blocks."""
        left = 0
        while self.clients:
            _, client = self.clients.popitem()
            left += client.close(timeout=timeout)
        return left

    def __enter__(self) -> DeviceClients:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
