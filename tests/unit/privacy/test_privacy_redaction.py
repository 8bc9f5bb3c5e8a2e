from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.redaction import redact, redact_event, scan
from privacy.rules import GATE_CHARS, RULES, rule_names
from tests.unit.privacy.privacy_events import PAYLOADS, make_event

GH = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"
AKIA = "AKIAIOSFODNN7EXAMPLE"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"export AWS_ACCESS_KEY_ID={AKIA}", "export AWS_ACCESS_KEY_ID=<SECRET:aws_access_key>"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = <SECRET:aws_secret_key>",
        ),
        (f"GITHUB_TOKEN={GH}", "GITHUB_TOKEN=<SECRET:github_token>"),
        (
            "SLACK_BOT_TOKEN=xoxb-12345678901-123456789012-AbCdEfGhIjKlMnOpQrStUvWx",
            "SLACK_BOT_TOKEN=<SECRET:slack_token>",
        ),
        ("key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "key=<SECRET:google_api_key>"),
        (
            "stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'",
            "stripe.api_key = '<SECRET:stripe_key>'",
        ),
        ("password=hunter2", "password=<SECRET:password>"),
        ("PGPASSWORD=Tr0ub4dor3 psql -h db", "PGPASSWORD=<SECRET:password> psql -h db"),
        ("mysql -u root -pS3cret! -h 127.0.0.1", "mysql -u root -p<SECRET:password> -h 127.0.0.1"),
        ("login --password Spring#2025", "login --password <SECRET:password>"),
        (
            "postgres://app:Xk9f2Lq8@db.internal:5432/candor",
            "postgres://app:<SECRET:connection_string>@db.internal:5432/candor",
        ),
        ("API_KEY=4f9c2b1e8a7d6c5b4a39f0e1d2c3b4a5", "API_KEY=<SECRET:api_key>"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
            "\n-----END PRIVATE KEY-----",
            "<SECRET:private_key>",
        ),
        ("write to jane.doe@example.com today", "write to <PII:email> today"),
        ("call me at +44 20 7946 0958", "call me at <PII:phone>"),
        ("phone: (415) 555-0132", "phone: <PII:phone>"),
        ("card 4111 1111 1111 1111 exp 12/27", "card <PII:card_number> exp 12/27"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN <PII:iban>"),
    ],
)
def test_redact_replaces_the_secret_with_a_typed_placeholder(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "def evaluate(event: dict[str, Any], policy: ConsentPolicy | None) -> Decision:",
        "request id 550e8400-e29b-41d4-a716-446655440000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "pip install fastavro==1.13.1",
        "Meeting on 2024-03-15 at 14:30, total $1,299.99",
        "Order #4815162342 has shipped",
        "4111 1111 1111 1112",  # fails Luhn
        "DE89 3704 0044 0532 0130 01",  # fails mod-97
        "password: str",
        "password = getpass.getpass()",
        "DB_PASSWORD=${DB_PASSWORD}",
        "api_key = os.environ.get('API_KEY')",
        "git clone git@github.com:candor/app.git",
        "logo@2x.png",
        "mysql -u root -p",
        "connect to 192.168.100.200:5432",
        "timestamp 1716900000123456",
    ],
)
def test_redact_leaves_clean_text_alone(text: str) -> None:
    assert redact(text) == redact(text).__class__(text, ())


def test_rules_are_reported_in_text_order_once_each() -> None:
    text = "a@example.com then password=hunter2 then b@example.org"
    result = redact(text)
    assert result.rules == ("email", "password")
    assert result.text == "<PII:email> then password=<SECRET:password> then <PII:email>"


def test_specific_rule_beats_generic_one() -> None:
    assert redact(f"GITHUB_TOKEN={GH}").rules == ("github_token",)


def test_hits_do_not_overlap_and_do_not_leak_secrets() -> None:
    text = "postgres://u:Pw0rd123@db.example.com/x and x@y.org"
    hits = scan(text)
    spans = [(h.start, h.end) for h in hits]
    assert spans == sorted(spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert "Pw0rd123" not in redact(text).text
    assert "Pw0rd123" not in repr(hits)


@pytest.mark.parametrize(
    "text",
    [
        "password=<SECRET:password>",
        "mail <PII:email> or call <PII:phone>",
        '"password": "<SECRET:password>"',
        "postgres://app:<SECRET:connection_string>@db:5432/x",
    ],
)
def test_placeholders_are_never_redacted_again(text: str) -> None:
    assert redact(text).text == text


def test_a_match_that_lost_an_overlap_is_still_redacted() -> None:
    result = redact(f"password=hunter2={GH}")
    assert "hunter2" not in result.text
    assert result.rules == ("github_token", "password")


_SECRETISH = st.sampled_from(
    [
        "password=hunter2",
        f" {AKIA} ",
        GH,
        " jane@example.com ",
        " +1 415 555 0132 ",
        "4111111111111111",
        " DE89370400440532013000 ",
        "=",
        ":",
        "-",
        "@",
        "<",
        ">",
        " ",
        "\n",
        "<SECRET:password>",
        "0",
        "7",
        "x",
        "FR76 ",
        "AB12 ",
        "token: ",
        "://u:",
        "mysql -p",
        "020 7946 0958",
        "'",
        '"',
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_SECRETISH, st.text(max_size=8)), max_size=12).map("".join))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once.text).text == once.text


def test_every_rule_has_a_distinct_name_listed() -> None:
    assert set(rule_names()) == {rule.name for rule in RULES}
    assert all(rule.placeholder.startswith(("<SECRET:", "<PII:")) for rule in RULES)
    assert "\n" not in "".join(GATE_CHARS)


# --- events ---------------------------------------------------------------------------


def test_redact_event_covers_the_free_text_fields() -> None:
    cases = {
        "KeyInput": ("text", "my mail is jane@example.com"),
        "TerminalCommand": ("command", "PGPASSWORD=Tr0ub4dor3 psql"),
        "IdeEdit": ("diff", f"+TOKEN = '{GH}'"),
    }
    for payload_type, (field, value) in cases.items():
        event = make_event(
            payload_type,
            payload={**PAYLOADS[payload_type], field: value},
            redactions=["secure_field"],
        )
        event["app"]["window_title"] = "Inbox - bob@example.org - Mail"
        before = copy.deepcopy(event)
        out = redact_event(event)
        assert event == before  # not mutated
        assert "@example" not in out["app"]["window_title"]
        assert "<" in out["payload"][field] and value not in out["payload"][field]
        assert out["redactions"][0] == "secure_field"
        assert len(out["redactions"]) == len(set(out["redactions"]))
        assert "email" in out["redactions"]


def test_redact_event_returns_the_same_object_when_clean() -> None:
    event = make_event("TerminalCommand")
    assert redact_event(event) is event


def test_redact_event_ignores_fields_of_other_payload_types() -> None:
    event = make_event("MouseClick", payload={**PAYLOADS["MouseClick"], "text": "a@b.com"})
    event["app"]["window_title"] = None
    assert redact_event(event) is event


def test_repeated_texts_give_the_same_answer_and_secrets_are_not_remembered() -> None:
    from privacy import redaction

    clean = "main.py - candor - Visual Studio Code"
    secret = "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    first = [redact(clean), redact(secret)]
    assert [redact(clean), redact(secret)] == first
    assert first[1].rules and "wJalrXUtnFEMI" not in first[1].text
    assert clean in redaction._CLEAN
    assert secret not in redaction._CLEAN
