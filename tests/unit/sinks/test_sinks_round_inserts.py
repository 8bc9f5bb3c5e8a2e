"""A round's inserts on several writers at once: every insert made once, the
results in the round's order, an error raised only once all have ended."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sinks.consumer import _Sink


class _Writer:
    def __init__(self, name: int, fail_on: str | None = None) -> None:
        self.name, self.fail_on = name, fail_on
        self.tokens: list[str] = []
        self.threads: set[str] = set()

    def write(self, rows: Any, token: str) -> Any:
        self.tokens.append(token)
        self.threads.add(threading.current_thread().name)
        if token == self.fail_on:
            raise RuntimeError(f"insert {token} refused")
        return (self.name, token, rows)


def _sink(writers: list[_Writer]) -> Any:
    sink: Any = _Sink.__new__(_Sink)
    sink.writers = writers
    sink.inserting = ThreadPoolExecutor(len(writers)) if len(writers) > 1 else None
    return sink


@pytest.mark.parametrize(("writers", "inserts"), [(1, 5), (3, 1), (3, 2), (3, 7), (4, 12)])
def test_each_insert_is_made_once_and_the_results_keep_the_round_order(
    writers: int, inserts: int
) -> None:
    ws = [_Writer(i) for i in range(writers)]
    sink = _sink(ws)
    round_ = [(f"rows{k}", f"t{k}") for k in range(inserts)]
    results = sink._insert(round_)
    assert [(token, rows) for _, token, rows in results] == [(t, r) for r, t in round_]
    assert sorted(t for w in ws for t in w.tokens) == sorted(t for _, t in round_)
    if writers > 1 and inserts > 1:  # spread over the writers, off the caller's thread
        assert len([w for w in ws if w.tokens]) == min(writers, inserts)
        assert threading.current_thread().name not in set().union(*(w.threads for w in ws))


def test_a_failed_insert_is_raised_after_the_others_ended() -> None:
    ws = [_Writer(0, fail_on="t0"), _Writer(1), _Writer(2)]
    sink = _sink(ws)
    with pytest.raises(RuntimeError, match="insert t0 refused"):
        sink._insert([(f"rows{k}", f"t{k}") for k in range(6)])
    # writer 0 stopped at its failure; the others made all of theirs
    assert ws[0].tokens == ["t0"] and ws[1].tokens == ["t1", "t4"] and ws[2].tokens == ["t2", "t5"]
