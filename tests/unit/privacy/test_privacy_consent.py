from __future__ import annotations

import copy
from typing import Any

import pytest

from privacy.consent import (
    AlreadyRevoked,
    ConsentPolicy,
    InvalidPolicy,
    MissingIdentity,
    NothingToGrant,
    NothingToRevoke,
    Scope,
    UnknownScope,
    UnknownSubject,
    evaluate,
    grant,
    parse_scopes,
    revoke,
)
from schemas.errors import UnknownPayloadType
from tests.unit.privacy.privacy_events import ORG, PAYLOADS, SUBJECT, make_event

NOW = 1_700_000_000_000_000
META = Scope.ACTIVITY_METADATA


def policy(*scopes: Scope, version: int = 3) -> ConsentPolicy:
    return ConsentPolicy(SUBJECT, ORG, version, frozenset(scopes), "admin", NOW, None)


# --- scopes and policy records ------------------------------------------------------


def test_parse_scopes_accepts_names_and_collapses_duplicates() -> None:
    assert parse_scopes(["analytics", "analytics", Scope.TRAINING_USE]) == {
        Scope.ANALYTICS,
        Scope.TRAINING_USE,
    }


@pytest.mark.parametrize("bad", ["keystrokes", "", "ANALYTICS", "screen_frame"])
def test_parse_scopes_names_the_unknown_scope(bad: str) -> None:
    with pytest.raises(UnknownScope) as caught:
        parse_scopes(["analytics", bad])
    assert caught.value.name == bad
    assert isinstance(caught.value, ValueError)


def test_scope_has_the_eight_contract_scopes() -> None:
    assert {s.value for s in Scope} == {
        "activity_metadata",
        "window_titles",
        "keystroke_content",
        "screen_frames",
        "ide_content",
        "terminal_content",
        "training_use",
        "analytics",
    }


def test_policy_round_trips_through_contract_dict() -> None:
    original = ConsentPolicy(
        SUBJECT, ORG, 4, frozenset({Scope.ANALYTICS, META}), "jana", NOW, "annual review"
    )
    data = original.to_dict()
    assert data == {
        "subject_id": SUBJECT,
        "org_id": ORG,
        "version": 4,
        "scopes": ["activity_metadata", "analytics"],
        "changed_by": "jana",
        "changed_at": NOW,
        "reason": "annual review",
    }
    assert ConsentPolicy.from_dict(data) == original


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": "3"}, InvalidPolicy),
        ({"version": 0}, InvalidPolicy),
        ({"changed_at": 1.5}, InvalidPolicy),
        ({"scopes": "analytics"}, InvalidPolicy),
        ({"subject_id": None}, InvalidPolicy),
        ({"reason": 7}, InvalidPolicy),
        ({"scopes": ["analytics", "mind_reading"]}, UnknownScope),
    ],
)
def test_policy_from_dict_rejects_malformed_records(
    change: dict[str, Any],
    error: type[Exception],
) -> None:
    data = policy(META).to_dict() | change
    with pytest.raises(error):
        ConsentPolicy.from_dict(data)


def test_policy_from_dict_reports_missing_field() -> None:
    data = policy(META).to_dict()
    del data["changed_by"]
    with pytest.raises(InvalidPolicy, match="changed_by"):
        ConsentPolicy.from_dict(data)


# --- grant / revoke -----------------------------------------------------------------


def test_first_grant_is_version_one() -> None:
    first = grant(None, ["activity_metadata"], "jana", NOW, subject_id=SUBJECT, org_id=ORG)
    assert (first.version, first.scopes, first.changed_by, first.changed_at) == (
        1,
        frozenset({META}),
        "jana",
        NOW,
    )


def test_grants_and_revokes_bump_the_version_each_time() -> None:
    p1 = grant(None, ["activity_metadata"], "jana", NOW, subject_id=SUBJECT, org_id=ORG)
    p2 = grant(p1, ["keystroke_content", "analytics"], "jana", NOW + 1, reason="opt-in")
    p3 = revoke(p2, ["analytics"], "jana", NOW + 2)
    p4 = revoke(p3, None, "dpo", NOW + 3, reason="erasure")
    assert [p.version for p in (p1, p2, p3, p4)] == [1, 2, 3, 4]
    assert p2.scopes == {META, Scope.KEYSTROKE_CONTENT, Scope.ANALYTICS}
    assert p2.reason == "opt-in"
    assert p3.scopes == {META, Scope.KEYSTROKE_CONTENT}
    assert p4.scopes == frozenset()
    assert (p4.changed_by, p4.changed_at, p4.reason) == ("dpo", NOW + 3, "erasure")
    assert p1.scopes == {META}  # earlier versions are untouched values


def test_grant_after_full_revoke_continues_the_version_sequence() -> None:
    assert grant(policy(version=9), ["activity_metadata"], "x", NOW).version == 10


@pytest.mark.parametrize(
    ("current", "scopes", "kwargs", "error"),
    [
        (None, ["analytics"], {}, MissingIdentity),
        (None, ["analytics"], {"subject_id": SUBJECT}, MissingIdentity),
        (None, [], {"subject_id": SUBJECT, "org_id": ORG}, NothingToGrant),
        (policy(META, Scope.ANALYTICS), ["analytics"], {}, NothingToGrant),
        (policy(META), [], {}, NothingToGrant),
        (policy(META), ["telepathy"], {}, UnknownScope),
    ],
)
def test_grant_errors(
    current: ConsentPolicy | None,
    scopes: list[str],
    kwargs: dict[str, str],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        grant(current, scopes, "jana", NOW, **kwargs)


@pytest.mark.parametrize(
    ("current", "scopes", "error"),
    [
        (None, None, UnknownSubject),
        (None, ["analytics"], UnknownSubject),
        (policy(), None, AlreadyRevoked),
        (policy(), ["analytics"], AlreadyRevoked),
        (policy(META), ["analytics", "screen_frames"], NothingToRevoke),
        (policy(META), ["nonsense"], UnknownScope),
    ],
)
def test_revoke_errors(
    current: ConsentPolicy | None,
    scopes: list[str] | None,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        revoke(current, scopes, "jana", NOW)


# --- evaluate -----------------------------------------------------------------------

ALL = frozenset(Scope)
CONTENT: dict[str, list[tuple[str, str, Any, Any]]] = {
    "KeyInput": [("payload", "key", "a", None), ("payload", "text", "hello", None)],
    "ScreenFrame": [
        ("payload", "ref", PAYLOADS["ScreenFrame"]["ref"], ""),
        ("payload", "phash", "0123456789abcdef", ""),
    ],
    "IdeEdit": [("payload", "diff", "+x = 1", None)],
    "TerminalCommand": [("payload", "command", "ls -la", "")],
}
NEEDS = {
    "KeyInput": Scope.KEYSTROKE_CONTENT,
    "ScreenFrame": Scope.SCREEN_FRAMES,
    "IdeEdit": Scope.IDE_CONTENT,
    "TerminalCommand": Scope.TERMINAL_CONTENT,
}
SCOPE_SETS = {
    "metadata_only": frozenset({META}),
    "everything": ALL,
    "everything_but_content": ALL - set(NEEDS.values()),
    "keystrokes": frozenset({META, Scope.KEYSTROKE_CONTENT}),
    "screens": frozenset({META, Scope.SCREEN_FRAMES}),
    "ide": frozenset({META, Scope.IDE_CONTENT}),
    "terminal": frozenset({META, Scope.TERMINAL_CONTENT}),
    "titles": frozenset({META, Scope.WINDOW_TITLES}),
}


@pytest.mark.parametrize("payload_type", sorted(PAYLOADS))
@pytest.mark.parametrize("scope_set", sorted(SCOPE_SETS))
def test_evaluate_keeps_content_only_with_its_scope(payload_type: str, scope_set: str) -> None:
    scopes = SCOPE_SETS[scope_set]
    event = make_event(payload_type)
    decision = evaluate(event, policy(*scopes, version=7), None)
    assert decision.keep and decision.reason is None and decision.event is not None
    kept = decision.event
    assert kept["consent_version"] == 7
    # app_name is activity metadata; titles and URL hosts need window_titles
    titles = Scope.WINDOW_TITLES in scopes
    assert kept["app"] == (
        event["app"] if titles else {**event["app"], "window_title": None, "url_host": None}
    )
    for _, field, original, cleared in CONTENT.get(payload_type, []):
        expected = original if NEEDS[payload_type] in scopes else cleared
        assert kept["payload"][field] == expected
    untouched = {
        k: v
        for k, v in event["payload"].items()
        if k not in {f for _, f, _, _ in CONTENT.get(payload_type, [])}
    }
    assert {k: kept["payload"][k] for k in untouched} == untouched


def test_evaluate_keeps_keystroke_counts_without_content() -> None:
    kept = evaluate(make_event("KeyInput"), policy(META), None).event
    assert kept is not None
    assert kept["payload"]["count"] == 5 and kept["payload"]["modifiers"] == ["shift"]


@pytest.mark.parametrize(
    "the_policy",
    [
        None,
        policy(),
        policy(*(ALL - {META})),
        ConsentPolicy("someone-else", ORG, 1, ALL, "x", NOW),
        ConsentPolicy(SUBJECT, "other-org", 1, ALL, "x", NOW),
    ],
    ids=["no_policy", "empty", "no_activity_metadata", "other_subject", "other_org"],
)
def test_evaluate_denies_by_default(the_policy: ConsentPolicy | None) -> None:
    decision = evaluate(make_event("MouseClick"), the_policy, None)
    assert (decision.keep, decision.reason, decision.event) == (False, "no_consent", None)


def test_evaluate_never_mutates_its_input() -> None:
    for payload_type in PAYLOADS:
        event = make_event(
            payload_type, payload={**PAYLOADS[payload_type], "is_secure_field": True}
        )
        before = copy.deepcopy(event)
        evaluate(event, policy(META), None)
        assert event == before


def test_secure_field_text_is_dropped_even_with_keystroke_consent() -> None:
    event = make_event("KeyInput", payload={**PAYLOADS["KeyInput"], "is_secure_field": True})
    kept = evaluate(event, policy(*ALL), None).event
    assert kept is not None
    assert (kept["payload"]["key"], kept["payload"]["text"]) == (None, None)
    assert kept["payload"]["count"] == 5
    assert kept["redactions"] == ["secure_field"]


def test_unknown_payload_type_is_a_typed_error() -> None:
    event = make_event("Scroll", payload={"type": "Telepathy"})
    with pytest.raises(UnknownPayloadType):
        evaluate(event, policy(META), None)
