"""Unit tests never open a network socket: any attempt fails the test.

Unix-domain sockets stay allowed (asyncio's self-pipe uses a socketpair)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.network_guard import NetworkAccessInUnitTest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_bind = socket.socket.bind

    def guard(name: str, real: Any) -> Any:
        def method(self: socket.socket, address: Any, *args: Any) -> Any:
            if self.family in (socket.AF_INET, socket.AF_INET6):
                raise NetworkAccessInUnitTest(f"unit test tried socket.{name}({address!r})")
            return real(self, address, *args)

        return method

    monkeypatch.setattr(socket.socket, "connect", guard("connect", real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard("connect_ex", real_connect_ex))
    monkeypatch.setattr(socket.socket, "bind", guard("bind", real_bind))

    def no_create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        raise NetworkAccessInUnitTest(f"unit test tried socket.create_connection({address!r})")

    monkeypatch.setattr(socket, "create_connection", no_create_connection)
    yield
