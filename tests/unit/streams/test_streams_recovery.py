"""A table recovery step that outlives its limit ends the worker instead of
leaving faust's recovery loop silently (app.rebalancing true for good)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.tables.recovery import ServiceStopped

from streams.recovery import Recovery, RecoveryStepFailed, TableManager
from streams.transport import App


def _app() -> tuple[App, list[BaseException]]:
    app = App(
        "recovery-test",
        broker="kafka://127.0.0.1:1",
        store="memory://",
        web_enabled=False,
        TableManager=TableManager,
    )
    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    app.crash = crash  # type: ignore[method-assign]
    return app, crashes


def _recovery(app: App) -> Any:
    """The app's table recovery (faust types `app.tables` as its abstract manager)."""
    tables = app.tables
    assert isinstance(tables, TableManager)
    return tables.recovery


def test_the_worker_uses_this_recovery() -> None:
    async def main() -> Any:
        app, _ = _app()
        return _recovery(app)

    assert isinstance(asyncio.run(main()), Recovery)


def test_a_timed_out_step_crashes_the_app_with_a_clear_reason() -> None:
    async def main() -> list[BaseException]:
        app, crashes = _app()
        with pytest.raises(ServiceStopped):  # faust's loop still ends, but not silently
            await _recovery(app)._wait(asyncio.sleep(30), timeout=0.05)
        return crashes

    crashes = asyncio.run(main())
    assert len(crashes) == 1 and isinstance(crashes[0], RecoveryStepFailed)
    assert "0.05 s" in str(crashes[0])


def test_a_step_that_finishes_in_time_is_left_alone() -> None:
    async def main() -> list[BaseException]:
        app, crashes = _app()
        await _recovery(app)._wait(asyncio.sleep(0), timeout=5)
        return crashes

    assert asyncio.run(main()) == []


def test_a_stopping_recovery_stops_without_a_crash() -> None:
    async def main() -> list[BaseException]:
        app, crashes = _app()
        recovery = _recovery(app)
        await recovery.stop()  # faust's own stop: the step ends as "stopped"
        with pytest.raises(ServiceStopped):
            await recovery._wait(asyncio.sleep(30), timeout=5)
        return crashes

    assert asyncio.run(main()) == []
