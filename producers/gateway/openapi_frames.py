"""The OpenAPI description of ``PUT /v1/frames/{sha256}``, added to the gateway's
document (`producers.gateway.openapi`) when its frame route is on.

Built from the limits the route enforces (`producers.gateway.frames`), so the
document cannot drift from the behaviour. Pure.
"""

from __future__ import annotations

import copy
from typing import Any

from producers.gateway.batch import JSON
from producers.gateway.openapi import _error

__all__ = ["FRAME_MEDIA_TYPES", "frame_path", "with_frame_paths"]

FRAME_MEDIA_TYPES = ("image/png", "image/webp")


def frame_path(
    *, max_frame_bytes: int, frames_per_token_s: float, frame_burst_per_token: float
) -> dict[str, Any]:
    """The path item of ``/v1/frames/{sha256}``."""
    result = {"$ref": "#/components/schemas/FrameResult"}
    return {
        "put": {
            "summary": "Upload one screen frame",
            "operationId": "putFrame",
            "description": (
                "Stores the PNG or WebP frame whose sha256 is the path's `sha256` (the `ref` "
                "of the device's `ScreenFrame` event, without `sha256:`) for the token's "
                "subject, only when that subject consents to `screen_frames`. Before "
                "storage, text that OCR reads in the frame and that matches the redaction "
                "rules (secrets, e-mail addresses, card numbers, ...) is blacked out; the "
                "frame is then encrypted with the subject's data key. Idempotent: a frame "
                "already stored answers 200 with `stored: false`. Frames never travel in "
                "Kafka. Nothing is stored on any refusal. Rate: "
                f"{frames_per_token_s:g} frames/s per token, bursts of "
                f"{frame_burst_per_token:g}."
            ),
            "parameters": [
                {
                    "name": "sha256",
                    "in": "path",
                    "required": True,
                    "description": "sha256 of the body, 64 lowercase hex digits",
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                }
            ],
            "requestBody": {
                "required": True,
                "description": f"The encoded frame, at most {max_frame_bytes} bytes.",
                "content": {
                    media: {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "maxLength": max_frame_bytes,
                        }
                    }
                    for media in FRAME_MEDIA_TYPES
                },
            },
            "responses": {
                "201": {
                    "description": "Redacted, encrypted and stored.",
                    "content": {JSON: {"schema": result}},
                },
                "200": {
                    "description": "Already stored (nothing done).",
                    "content": {JSON: {"schema": result}},
                },
                "400": _error(
                    "The ref is malformed, the body does not hash to it, or it "
                    "is not a PNG/WebP image.",
                    ["invalid_ref", "hash_mismatch", "corrupt_frame"],
                ),
                "401": _error(
                    "Missing, unknown or expired token.",
                    ["missing_token", "invalid_token", "expired_token"],
                ),
                "403": _error(
                    "The token's subject has not consented to screen_frames, or "
                    "has no live data key (erased).",
                    ["no_consent", "no_data_key"],
                ),
                "413": _error("Frame over the byte or pixel limit.", ["frame_too_large"]),
                "429": _error("The token is over its frame rate.", ["rate_limited"], True),
                "503": _error(
                    "The consent registry is still loading; retry.", ["consent_unavailable"], True
                ),
            },
        }
    }


def with_frame_paths(
    document: dict[str, Any],
    *,
    max_frame_bytes: int,
    frames_per_token_s: float,
    frame_burst_per_token: float,
) -> dict[str, Any]:
    """A copy of the gateway's `document` with ``/v1/frames/{sha256}`` and its
    result schema added."""
    out = copy.deepcopy(document)
    out["paths"]["/v1/frames/{sha256}"] = frame_path(
        max_frame_bytes=max_frame_bytes,
        frames_per_token_s=frames_per_token_s,
        frame_burst_per_token=frame_burst_per_token,
    )
    out["components"]["schemas"]["FrameResult"] = {
        "type": "object",
        "required": ["ref", "stored"],
        "properties": {
            "ref": {"type": "string", "description": "sha256:<hex>"},
            "stored": {"type": "boolean", "description": "false: it was already stored"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "redactions": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "word boxes blacked out, per redaction rule",
            },
        },
    }
    return out
