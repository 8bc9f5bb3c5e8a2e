"""What the compiled Avro writer (`schemas.writer`) and reader (`schemas.reader`)
share: gathering generated Python source and running it once. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SourceBuilder:
    """Lines of generated source, a trailer run after them (tables of functions
    defined above), and the constants the code refers to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.trailer: list[str] = []
        self.consts: dict[str, Any] = {}
        self._counter = 0

    def _fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def _const(self, value: Any) -> str:
        name = self._fresh("_k")
        self.consts[name] = value
        return name

    def run(self, entry: str, helpers: Mapping[str, Any], label: str) -> tuple[str, Any]:
        """Execute the source with the constants and ``helpers`` in scope (``label``
        names it in tracebacks); return it and the function named ``entry``."""
        source = "\n".join(self.lines + self.trailer) + "\n"
        scope: dict[str, Any] = {**self.consts, **helpers}
        exec(compile(source, label, "exec"), scope)
        return source, scope[entry]
