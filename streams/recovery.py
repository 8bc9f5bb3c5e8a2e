"""Table recovery that ends the worker when a step fails, instead of hanging.

faust-streaming 0.15.3's `Recovery._wait` runs each recovery step with
``broker_request_timeout`` and turns a step that outlives it into
``ServiceStopped``; ``_restart_recovery`` catches that as "the service was
stopped", logs it at DEBUG and leaves its loop for good. ``app.rebalancing``
then stays true, no partition is ever resumed, and the worker idles forever.
`Recovery` tells a timed-out step from a real stop: the former crashes the
app with `RecoveryStepFailed` (an ERROR naming the limit), so the worker
exits non-zero and its supervisor starts it again.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.tables.recovery import ServiceStopped
from mode.services import WaitArgT

log = logging.getLogger(__name__)


class RecoveryStepFailed(RuntimeError):
    """A table recovery step failed or did not finish in time: the worker must restart."""


class Recovery(FaustRecovery):
    async def _wait(self, coro: WaitArgT, timeout: Any = None) -> None:
        try:
            await super()._wait(coro, timeout=timeout)
        except ServiceStopped:
            if self.should_stop or self._crashed.is_set():
                raise  # really stopping: faust's way
            err = RecoveryStepFailed(
                f"table recovery step did not finish within {timeout} s "
                "(broker_request_timeout); stopping the worker so that it is restarted"
            )
            log.error("%s", err)
            await self.app.crash(err)
            raise


class TableManager(FaustTableManager):
    """faust's table manager with `Recovery` in place of faust's own."""

    @property
    def recovery(self) -> FaustRecovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
