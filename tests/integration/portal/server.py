"""The portal served from a thread of the test process (its own event loop), on a free port."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from candor.portal.app import Portal, build_app
from candor.portal.cli import invite_link, store_path
from candor.portal.store import PortalStore
from candor.settings import Settings, replace
from tests.harness import free_port


class PortalThread:
    """``start()`` serves the portal of ``settings`` on 127.0.0.1:``port``; ``stop()`` ends it."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.settings = replace(settings, portal={"public_url": f"http://127.0.0.1:{self.port}"})
        self.store = PortalStore(store_path(self.settings))
        self.portal = Portal(self.settings, self.store)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="portal")

    @property
    def url(self) -> str:
        return self.settings.portal.public_url

    def invite(self, subject: str, ttl_s: float | None = None) -> str:
        """A sign-in link for ``subject`` (what `candor portal invite` prints)."""
        return invite_link(self.settings, subject, ttl_s)

    def start(self) -> PortalThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(build_app(self.portal), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.store.close()
