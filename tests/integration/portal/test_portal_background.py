"""The portal the demo leaves running: started in the background like the
servers, answering, stopped by `candor stack down`'s portal step."""

from __future__ import annotations

import time

import pytest

from candor import stack
from candor.settings import Settings
from tests.harness import free_port

pytestmark = pytest.mark.integration


def test_the_portal_runs_in_the_background_until_stopped(portal_settings: Settings) -> None:
    s = portal_settings
    s.portal.public_url = f"http://127.0.0.1:{free_port()}"
    assert not stack.portal_serving(s)
    try:
        assert stack.start_portal(s), (s.home / "logs" / "portal.log").read_text()
        assert stack.portal_serving(s)
        assert stack.start_portal(s)  # already serving: nothing more started
    finally:
        stack.stop_portal(s)
    for _ in range(50):
        if not stack.portal_serving(s):
            break
        time.sleep(0.2)
    assert not stack.portal_serving(s)
    assert not (s.home / "portal" / "portal.pid").exists()
