"""Consent scopes: the closed set of things a person can consent to.

``window_titles`` (window titles and browser URL hosts) is a scope of its own
since it was split from ``activity_metadata``: titles carry content (document
names, mail subjects, chat partners, search terms). A policy recorded before the
split is read as it is: ``activity_metadata`` alone no longer lets titles
through, so capture under an old grant can only shrink, never silently grow;
the person grants ``window_titles`` to have them kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Scope", "UnknownScope", "parse_scopes", "sorted_names"]


class Scope(StrEnum):
    """One thing a person can consent to. Values are the contract's scope names."""

    ACTIVITY_METADATA = "activity_metadata"
    WINDOW_TITLES = "window_titles"
    KEYSTROKE_CONTENT = "keystroke_content"
    SCREEN_FRAMES = "screen_frames"
    IDE_CONTENT = "ide_content"
    TERMINAL_CONTENT = "terminal_content"
    TRAINING_USE = "training_use"
    ANALYTICS = "analytics"


class UnknownScope(ValueError):
    """A scope name that is not one of :class:`Scope`; ``.name`` holds it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown consent scope: {name!r}")
        self.name = name


_SCOPE_ORDER: dict[Scope, int] = {scope: i for i, scope in enumerate(Scope)}


def parse_scopes(names: Iterable[str | Scope]) -> frozenset[Scope]:
    """Return the scopes named by ``names`` (duplicates collapse).

    Raises :class:`UnknownScope` carrying the first name that is not a scope.
    """
    scopes: set[Scope] = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            raise UnknownScope(str(name)) from None
    return frozenset(scopes)


def sorted_names(scopes: Iterable[Scope]) -> list[str]:
    """Return the scope names in :class:`Scope` declaration order (stable output)."""
    return [scope.value for scope in sorted(set(scopes), key=_SCOPE_ORDER.__getitem__)]
