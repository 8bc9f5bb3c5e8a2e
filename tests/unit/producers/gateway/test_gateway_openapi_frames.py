"""The gateway's OpenAPI document with the frame route: the path, its limits and
every refusal the route answers with."""

from __future__ import annotations

import pytest

from candor import gateway_cli
from candor.settings import Settings, replace
from producers.gateway.openapi import openapi_document
from producers.gateway.openapi_frames import with_frame_paths


def test_frame_path_carries_the_enforced_limits_and_refusals() -> None:
    base = openapi_document(max_body_bytes=1000, max_events=10, max_event_bytes=100)
    doc = with_frame_paths(
        base, max_frame_bytes=4096, frames_per_token_s=0.5, frame_burst_per_token=7
    )
    assert "/v1/frames/{sha256}" not in base["paths"]  # the input is left alone
    put = doc["paths"]["/v1/frames/{sha256}"]["put"]
    for media in ("image/png", "image/webp"):
        assert put["requestBody"]["content"][media]["schema"]["maxLength"] == 4096
    assert put["parameters"][0]["schema"]["pattern"] == "^[0-9a-f]{64}$"
    assert "0.5 frames/s per token, bursts of 7" in put["description"]
    reasons = {
        code: r["content"]["application/json"]["schema"]["properties"]["error"]["enum"]
        for code, r in put["responses"].items()
        if code[0] in "45"
    }
    assert reasons["400"] == ["invalid_ref", "hash_mismatch", "corrupt_frame"]
    assert reasons["403"] == ["no_consent", "no_data_key"]
    assert reasons["429"] == ["rate_limited"]
    assert "Retry-After" in put["responses"]["429"]["headers"]
    assert doc["paths"]["/v1/events"] == base["paths"]["/v1/events"]


def test_a_gateway_with_frames_needs_the_composed_route(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m candor.gateway_cli` cannot compose the frame route (it lives
    in candor/): with frames on it refuses to start instead of serving without it."""
    import argparse

    parser = argparse.ArgumentParser()
    handlers = gateway_cli.add_commands(parser.add_subparsers(dest="command"))
    s = replace(Settings(), frames={"gateway": True})
    args = parser.parse_args(["gateway", "--token-file", "/nonexistent/tokens.json"])
    assert handlers["gateway"](args, s) == 2
    assert "has no frame route" in capsys.readouterr().err
