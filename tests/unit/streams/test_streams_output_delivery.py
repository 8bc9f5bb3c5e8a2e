"""A batch's delivery counts its own records only, whichever thread serves the
delivery reports (`streams.output.Delivery`)."""

from __future__ import annotations

import threading
from typing import Any

from streams.output import Delivery


class Msg:
    def topic(self) -> str:
        return "t.capture.clean"


def test_a_delivery_is_done_when_each_of_its_records_is_reported() -> None:
    d = Delivery()
    for _ in range(3):
        d.sent()
    d.on_delivery(None, Msg())  # type: ignore[arg-type]
    d.on_delivery(None, Msg())  # type: ignore[arg-type]
    assert d.pending == 1 and d.errors == []
    d.on_delivery("MSG_TIMED_OUT", Msg())  # type: ignore[arg-type]
    assert d.pending == 0 and d.errors == ["t.capture.clean: MSG_TIMED_OUT"]


def test_reports_served_by_another_thread_while_records_are_sent_are_all_counted() -> None:
    d = Delivery()
    n = 20_000
    for _ in range(n):
        d.sent()
    reports: list[Any] = [None] * n

    def serve() -> None:
        for err in reports:
            d.on_delivery(err, Msg())  # type: ignore[arg-type]

    server = threading.Thread(target=serve)
    server.start()
    for _ in range(n):  # sent (and counted) while the other thread serves reports
        d.sent()
        d.on_delivery(None, Msg())  # type: ignore[arg-type]
    server.join()
    assert d.pending == 0
