"""Consent: the policy a person has granted, how it changes, and what it lets through.

The consent registry is the compacted topic ``consent.policies`` (key ``subject_id``);
this module is its pure model:

- :class:`ConsentPolicy` is one record of that topic, convertible to and from the
  contract's dict form.
- :func:`grant` / :func:`revoke` compute the *next* policy (version + 1) from the
  current one, or raise a typed error when the change would do nothing.
- :func:`evaluate` decides what happens to one capture event under a policy and the
  org's capture hours: drop it with a reason, or keep a minimised copy.

Deny by default: no policy, empty scopes or a policy without ``activity_metadata``
means the event is dropped with reason ``"no_consent"``. ``training_use`` and
``analytics`` are not needed to *keep* an event; they are read downstream (exports,
analyst views) and only travel here as part of the policy. ``window_titles`` keeps
window titles and URL hosts (see :mod:`privacy.scope` for how policies granted
before it existed are read: without it, titles are cleared).

Nothing here reads the clock, the environment or the network: ``now`` and the
policy are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from privacy.capture_hours import CaptureHours, within_capture_hours
from privacy.minimisation import minimise
from privacy.scope import Scope, UnknownScope, parse_scopes, sorted_names

__all__ = [
    "AlreadyRevoked",
    "CaptureHours",
    "ConsentError",
    "ConsentPolicy",
    "Decision",
    "InvalidPolicy",
    "MissingIdentity",
    "NothingToGrant",
    "NothingToRevoke",
    "Scope",
    "UnknownScope",
    "UnknownSubject",
    "evaluate",
    "grant",
    "parse_scopes",
    "revoke",
    "within_capture_hours",
]


class ConsentError(Exception):
    """Base of the policy errors here; a bad scope name raises :class:`UnknownScope`
    (a ``ValueError`` from :mod:`privacy.scope`) instead."""


class InvalidPolicy(ConsentError, ValueError):
    """A policy dict that does not have the contract's shape."""


class MissingIdentity(ConsentError, ValueError):
    """A first grant was asked for without ``subject_id`` and ``org_id``."""


class UnknownSubject(ConsentError, LookupError):
    """A revoke for a subject that has no policy at all."""


class NothingToGrant(ConsentError):
    """A grant whose scopes are all already granted (no new version is due)."""


class AlreadyRevoked(ConsentError):
    """A revoke on a policy that already holds no scope."""


class NothingToRevoke(ConsentError):
    """A revoke of scopes none of which the policy holds."""


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """One version of a person's consent, as carried by ``consent.policies``.

    ``version`` starts at 1 with the first grant and grows by one with each change;
    ``changed_at`` is in microseconds since the epoch (UTC).
    """

    subject_id: str
    org_id: str
    version: int
    scopes: frozenset[Scope]
    changed_by: str
    changed_at: int
    reason: str | None = None

    def allows(self, scope: Scope) -> bool:
        """Return whether ``scope`` is granted."""
        return scope in self.scopes

    def to_dict(self) -> dict[str, Any]:
        """Return the contract form; scopes are listed in :class:`Scope` order."""
        return {
            "subject_id": self.subject_id,
            "org_id": self.org_id,
            "version": self.version,
            "scopes": sorted_names(self.scopes),
            "changed_by": self.changed_by,
            "changed_at": self.changed_at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConsentPolicy:
        """Build a policy from its contract form.

        Raises :class:`InvalidPolicy` on a missing or mistyped field and
        :class:`UnknownScope` on a scope name that is not known.
        """
        try:
            subject_id = data["subject_id"]
            org_id = data["org_id"]
            version = data["version"]
            scopes = data["scopes"]
            changed_by = data["changed_by"]
            changed_at = data["changed_at"]
        except KeyError as err:
            raise InvalidPolicy(f"policy lacks field {err.args[0]!r}") from None
        reason = data.get("reason")
        for field, value in (
            ("subject_id", subject_id),
            ("org_id", org_id),
            ("changed_by", changed_by),
        ):
            if not isinstance(value, str):
                raise InvalidPolicy(f"policy field {field!r} must be a string")
        for field, value in (("version", version), ("changed_at", changed_at)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidPolicy(f"policy field {field!r} must be an integer")
        if version < 1:
            raise InvalidPolicy("policy version must be >= 1")
        if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
            raise InvalidPolicy("policy field 'scopes' must be a list of strings")
        if reason is not None and not isinstance(reason, str):
            raise InvalidPolicy("policy field 'reason' must be a string or None")
        return cls(
            subject_id=subject_id,
            org_id=org_id,
            version=version,
            scopes=parse_scopes(scopes),
            changed_by=changed_by,
            changed_at=changed_at,
            reason=reason,
        )


def grant(
    current: ConsentPolicy | None,
    scopes: Iterable[str | Scope],
    by: str,
    now: int,
    *,
    subject_id: str | None = None,
    org_id: str | None = None,
    reason: str | None = None,
) -> ConsentPolicy:
    """Return the next policy: ``current``'s scopes plus ``scopes``, version + 1.

    With ``current=None`` this is the first grant (version 1) and ``subject_id`` and
    ``org_id`` are required. ``now`` is the change time in micros.

    Raises :class:`UnknownScope` for a bad scope name, :class:`MissingIdentity`
    when a first grant lacks its identity, and :class:`NothingToGrant` when every
    scope is already granted (or none was given).
    """
    wanted = parse_scopes(scopes)
    if current is None:
        if subject_id is None or org_id is None:
            raise MissingIdentity("a first grant needs subject_id and org_id")
        if not wanted:
            raise NothingToGrant("no scope to grant")
        return ConsentPolicy(subject_id, org_id, 1, wanted, by, now, reason)
    if wanted <= current.scopes:
        raise NothingToGrant(f"{current.subject_id} already holds {sorted_names(wanted)}")
    return ConsentPolicy(
        current.subject_id,
        current.org_id,
        current.version + 1,
        current.scopes | wanted,
        by,
        now,
        reason,
    )


def revoke(
    current: ConsentPolicy | None,
    scopes: Iterable[str | Scope] | None,
    by: str,
    now: int,
    *,
    reason: str | None = None,
) -> ConsentPolicy:
    """Return the next policy without ``scopes`` (``None`` = every scope), version + 1.

    Raises :class:`UnknownSubject` when there is no current policy,
    :class:`AlreadyRevoked` when the current policy holds no scope,
    :class:`NothingToRevoke` when none of ``scopes`` is held, and
    :class:`UnknownScope` for a bad scope name.
    """
    if current is None:
        raise UnknownSubject("no consent policy to revoke from")
    dropped = frozenset(Scope) if scopes is None else parse_scopes(scopes)
    if not current.scopes:
        raise AlreadyRevoked(f"{current.subject_id} holds no scope")
    if not dropped & current.scopes:
        raise NothingToRevoke(f"{current.subject_id} holds none of {sorted_names(dropped)}")
    return ConsentPolicy(
        current.subject_id,
        current.org_id,
        current.version + 1,
        current.scopes - dropped,
        by,
        now,
        reason,
    )


DropReason = Literal["no_consent", "outside_capture_hours"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one event.

    ``keep`` is True with ``event`` set to the minimised copy, or False with
    ``reason`` saying why it was dropped (and ``event`` None).
    """

    keep: bool
    event: dict[str, Any] | None = None
    reason: DropReason | None = None

    @classmethod
    def drop(cls, reason: DropReason) -> Decision:
        """Return a drop decision with ``reason``."""
        return cls(keep=False, reason=reason)


def evaluate(
    event: Mapping[str, Any],
    policy: ConsentPolicy | None,
    hours: CaptureHours | None,
) -> Decision:
    """Decide the fate of ``event`` under ``policy`` and the org's capture ``hours``.

    Drops with ``"no_consent"`` when there is no policy, the policy belongs to another
    subject or org, or it lacks ``activity_metadata``; then with
    ``"outside_capture_hours"`` when ``hours`` is given and ``event["ts"]`` falls
    outside them. Otherwise keeps a copy of the event whose content fields are cleared
    for each missing scope (see :mod:`privacy.minimisation`), with
    ``consent_version`` set to the policy's version.

    Never mutates ``event``: the envelope, ``app``, ``payload`` and ``redactions``
    of the returned event are fresh objects; other nested values are shared.
    Raises :class:`privacy.minimisation.UnknownPayloadType` for a payload type the
    contract does not define.
    """
    if (
        policy is None
        or Scope.ACTIVITY_METADATA not in policy.scopes
        or policy.subject_id != event.get("subject_id")
        or policy.org_id != event.get("org_id")
    ):
        return Decision.drop("no_consent")
    if hours is not None and not within_capture_hours(hours, int(event["ts"])):
        return Decision.drop("outside_capture_hours")
    kept = minimise(event, policy.scopes)
    kept["consent_version"] = policy.version
    return Decision(keep=True, event=kept)
