"""What a unit test that reaches the network raises (tests/unit/conftest.py installs the guard)."""

from __future__ import annotations


class NetworkAccessInUnitTest(RuntimeError):
    """A unit test tried to reach the network; make it an integration test instead."""
