"""What the privacy integration tests share: the master key of their private pipelines
and the type of the in-process privacy CLI (the `cli` fixture)."""

from __future__ import annotations

from collections.abc import Callable

MASTER = bytes(range(1, 33))


Cli = Callable[..., int]
