"""Candor's optional extras and the error a missing one raises.

The core install (``pip install candor``) runs the pipeline: gateway, workers,
sinks, the CLI. Three parts need more, installed as extras:

- ``agent``: the desktop capture agent (pynput, python-xlib, mss);
- ``local``: the local stack's ClickHouse, the engine of the chdb-core wheel;
- ``export``: Parquet through pyarrow, for the dataset exports and the
  portal's data download.

A module that needs an extra imports it where it is used and turns the
`ModuleNotFoundError` into `MissingExtra`, which names the extra to install::

    try:
        import pyarrow as pa
    except ModuleNotFoundError as err:
        raise MissingExtra.of(err, "export", "the dataset export") from err
"""

from __future__ import annotations

from typing import Literal

Extra = Literal["agent", "local", "export"]

__all__ = ["Extra", "MissingExtra"]


class MissingExtra(ImportError):
    """A module of an optional extra is not installed. ``extra`` is the extra
    that installs it (``pip install 'candor[<extra>]'``), ``module`` the module
    that was missing, ``needed_by`` what needed it."""

    def __init__(self, module: str, extra: Extra, needed_by: str) -> None:
        super().__init__(
            f"{needed_by} needs the Python module {module!r}, which is not installed: "
            f"pip install 'candor[{extra}]'",
            name=module,
        )
        self.module = module
        self.extra: Extra = extra
        self.needed_by = needed_by

    @classmethod
    def of(cls, err: ModuleNotFoundError, extra: Extra, needed_by: str) -> MissingExtra:
        """The `MissingExtra` for ``err``, raised by importing a module of ``extra``;
        ``module`` is the top-level package that was missing (``pyarrow`` for a
        failed ``import pyarrow.parquet``)."""
        return cls((err.name or "?").split(".")[0], extra, needed_by)
