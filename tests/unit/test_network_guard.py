import socket

import pytest

from tests.unit.network_guard import NetworkAccessInUnitTest


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_unit_tests_cannot_connect(family: socket.AddressFamily) -> None:
    addr = ("127.0.0.1", 9) if family == socket.AF_INET else ("::1", 9)
    with socket.socket(family, socket.SOCK_STREAM) as s, pytest.raises(NetworkAccessInUnitTest):
        s.connect(addr)


def test_unit_tests_cannot_create_connection() -> None:
    with pytest.raises(NetworkAccessInUnitTest):
        socket.create_connection(("127.0.0.1", 9092), timeout=1)


def test_unix_socketpair_still_works() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x")
        assert b.recv(1) == b"x"
