"""The HTTP gateway as a real process in front of real Kafka: what it accepts
arrives in Kafka, and no malformed, forged or unauthenticated input gets a
5xx or reaches the topic (hypothesis fuzz)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from candor.settings import Settings
from producers.gateway.auth import DeviceIdentity, TokenFile
from producers.gateway.framing import AVRO_BATCH, frame_messages
from schemas.clock import now_micros
from schemas.codec import encode_event
from tests.harness import free_port
from tests.integration.producers.broker import capture_events, make_topic, read_topic
from tests.integration.producers.gateway_fixtures import (
    GatewayProcess,
    envelope,
    json_batch,
    start_gateway,
)

PUBLISHED: set[str] = set()  # event_ids the gateway acknowledged, across this module


@pytest.fixture(scope="module")
def gateway(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, str]]:
    topic = make_topic(settings, f"it.gateway.{uuid.uuid4().hex[:10]}")
    token_file = tmp_path_factory.mktemp("gateway") / "tokens.json"
    tokens = TokenFile(token_file)
    names = {
        "a": tokens.add(DeviceIdentity("dev-a", "sub-a", "org-a")),
        "b": tokens.add(DeviceIdentity("dev-b", "sub-b", "org-a")),
        "expired": tokens.add(
            DeviceIdentity("dev-a", "sub-a", "org-a", expires_at=now_micros() - 1)
        ),
    }
    # rate limits out of the way: these tests are about validation and delivery
    # (the limits have tests of their own in test_gateway_token_limits.py)
    process = start_gateway(
        settings.kafka.bootstrap,
        topic,
        token_file,
        free_port(),
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--token-rate",
        "1000000",
        "--token-burst",
        "1000000",
    )
    process.tokens = names
    try:
        yield process, topic
    finally:
        process.stop()


def test_accepted_json_and_avro_events_are_in_kafka_when_answered(
    gateway: tuple[GatewayProcess, str], settings: Settings
) -> None:
    gw, topic = gateway
    json_events = [envelope(seq=i) for i in range(1, 51)]
    reply = gw.post(json_batch(*json_events), token=gw.tokens["a"])
    assert (reply.status, reply.json()) == (200, {"accepted": 50, "rejected": []})
    avro_events = [envelope(device="dev-b", subject="sub-b", seq=i) for i in range(1, 31)]
    body = frame_messages(encode_event(event) for event in avro_events)
    reply = gw.post(body, token=gw.tokens["b"], content_type=AVRO_BATCH)
    assert (reply.status, reply.json()) == (200, {"accepted": 30, "rejected": []})
    PUBLISHED.update(e["event_id"] for e in json_events + avro_events)

    records = read_topic(settings.kafka.bootstrap, topic, want=2, settle_s=1)
    # One DeviceBatch record per accepted request and device.
    assert sorted(r.key or b"" for r in records) == [b"dev-a", b"dev-b"]
    got = {event["event_id"]: (r, event) for r, event in capture_events(records)}
    assert len(got) == 80
    for sent in json_events + avro_events:
        record, event = got[sent["event_id"]]
        assert record.key == sent["device_id"].encode()
        assert event["payload"] == sent["payload"] and event["seq"] == sent["seq"]
        assert event["received_ts"] is not None and event["received_ts"] > sent["ts"]


def test_serves_health_metrics_and_openapi(gateway: tuple[GatewayProcess, str]) -> None:
    gw, _ = gateway
    assert gw.request("GET", "/healthz").json() == {"status": "ok"}
    doc = gw.request("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and "/v1/events" in doc["paths"]
    gw.post(json_batch(envelope()), token="not-a-token")
    metrics = gw.request("GET", "/metrics").body.decode()
    assert 'candor_gateway_requests_total{status="401"}' in metrics
    assert "candor_gateway_request_seconds_bucket" in metrics
    assert "candor_gateway_events_total" in metrics


# -- fuzz -----------------------------------------------------------------------

KNOWN_TYPES = {
    "KeyInput",
    "MouseMove",
    "MouseClick",
    "Scroll",
    "WindowFocus",
    "ScreenFrame",
    "IdeEdit",
    "TerminalCommand",
    "ActivityState",
}
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS: list[str | tuple[str, str]] = [
    "event_id",
    "seq",
    "ts",
    "app",
    "payload",
    "redactions",
    "consent_version",
    "received_ts",
    ("app", "app_name"),
    ("app", "window_title"),
    ("payload", "type"),
    ("payload", "count"),
    ("payload", "modifiers"),
    ("payload", "text"),
]


def _valid(event: dict[str, Any]) -> bool:
    """Whether the contract accepts `event` (the codec is the oracle)."""
    try:
        uuid.UUID(event["event_id"])
        encode_event({**event, "received_ts": 0})
    except Exception:
        return False
    return len(event["event_id"]) == 36


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, str, str, set[str]]:
    """(token name, body, content type, case, event_ids that should be published)."""
    case = draw(
        st.sampled_from(
            [
                "bytes",
                "truncated",
                "wrong_type",
                "huge",
                "union",
                "forged",
                "bad_token",
                "avro_junk",
            ]
        )
    )
    neighbour = envelope(seq=draw(st.integers(1, 10**9)))
    if case == "bytes":
        body = draw(st.binary(max_size=2000))
        return (
            "a",
            body,
            draw(st.sampled_from(["application/json", AVRO_BATCH, "text/plain"])),
            case,
            set(),
        )
    if case == "truncated":
        if draw(st.booleans()):
            body = json_batch(neighbour, envelope(seq=2))
            return "a", body[: draw(st.integers(0, len(body) - 1))], "application/json", case, set()
        first, last = encode_event(neighbour), encode_event(envelope(seq=2))
        body = frame_messages([first, last])
        cut = draw(st.integers(4 + len(first) + 1, len(body) - 1))
        return "a", body[:cut], AVRO_BATCH, case, set()
    if case == "wrong_type":
        target = draw(st.sampled_from(FIELDS))
        mutated = envelope(seq=3)
        value = draw(junk)
        if isinstance(target, tuple):
            mutated[target[0]] = {**mutated[target[0]], target[1]: value}
        else:
            mutated[target] = value
        try:
            body = json_batch(neighbour, mutated)
        except ValueError:  # NaN is not JSON the gateway would ever receive from json.dumps
            body = json_batch(neighbour)
            return "a", body, "application/json", case, {neighbour["event_id"]}
        expected = {neighbour["event_id"]}
        if _valid(json.loads(json.dumps(mutated))):
            expected.add(mutated["event_id"])
        return "a", body, "application/json", case, expected
    if case == "huge":
        size = draw(st.sampled_from([300_000, 1_000_000, 5_000_000]))
        big = envelope(app={"app_name": "x" * size, "window_title": None, "url_host": None})
        return "a", json_batch(big), "application/json", case, set()
    if case == "union":
        name = draw(st.text(min_size=1, max_size=30).filter(lambda t: t not in KNOWN_TYPES))
        odd = envelope(payload={"type": name, "dx": 1, "dy": 2})
        return "a", json_batch(neighbour, odd), "application/json", case, {neighbour["event_id"]}
    if case == "forged":
        field = draw(st.sampled_from(["device_id", "subject_id", "org_id"]))
        other = draw(
            st.text(min_size=1, max_size=20).filter(lambda t: t not in {"dev-a", "sub-a", "org-a"})
        )
        forged = envelope()
        forged[field] = other
        return "a", json_batch(neighbour, forged), "application/json", case, set()
    if case == "bad_token":
        token = draw(st.sampled_from(["expired", "missing", "wrong", "b"]))
        # Token "b" is a real device, but these events are dev-a's: forged.
        return token, json_batch(neighbour), "application/json", case, set()
    junk_frame = b"\xc3\x01" + draw(st.binary(min_size=1, max_size=200))
    body = frame_messages([encode_event(neighbour), junk_frame])
    return "a", body, AVRO_BATCH, case, {neighbour["event_id"]}


@hsettings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(request=requests())
def test_fuzzed_requests_get_4xx_and_only_valid_events_are_published(
    gateway: tuple[GatewayProcess, str], request: tuple[str, bytes, str, str, set[str]]
) -> None:
    gw, _ = gateway
    token_name, body, content_type, case, expected = request
    token = {"missing": None, "wrong": "x" * 43}.get(token_name, gw.tokens.get(token_name))
    reply = gw.post(body, token=token, content_type=content_type)
    assert reply.status < 500, (case, reply.status, reply.body[:300])
    answer = reply.json()
    if reply.status in (200, 400) and "accepted" in answer:
        assert answer["accepted"] == len(expected), (case, answer)
        assert reply.status == (400 if answer["rejected"] else 200)
        PUBLISHED.update(expected)
    else:
        assert 400 <= reply.status < 500 and not expected, (case, reply.status, answer)
        assert set(answer) == {"error", "detail"}


def test_the_topic_holds_exactly_the_acknowledged_events(
    gateway: tuple[GatewayProcess, str], settings: Settings
) -> None:
    _, topic = gateway
    assert PUBLISHED, "run with the tests above"
    records = read_topic(settings.kafka.bootstrap, topic, want=1, settle_s=2)
    ids = [event["event_id"] for _, event in capture_events(records)]
    assert len(ids) == len(set(ids))
    assert set(ids) == PUBLISHED
    assert all(r.key in (b"dev-a", b"dev-b") for r in records)
