"""Folding a run of events through one reducer's `apply` (shared by the
sessionizer, the minute aggregator and the action reducer). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

S = TypeVar("S")
Out = TypeVar("Out")
Event = Mapping[str, Any]


def fold_events(
    step: Callable[[S | None, Event], tuple[S, list[Out], list[Event]]],
    state: S | None,
    events: Iterable[Event],
) -> tuple[S | None, list[Out], list[Event]]:
    """Apply `step` to each event in turn; return the final state, every output
    in order and every late event in order. `state` is None until the first event."""
    outputs: list[Out] = []
    late: list[Event] = []
    for event in events:
        state, out, too_late = step(state, event)
        outputs.extend(out)
        late.extend(too_late)
    return state, outputs, late
