"""The OpenAPI 3.1 description of the HTTP gateway, served at ``GET /openapi.json``.

Built from the same constants the gateway enforces (limits, media types), so
the document cannot drift from the behaviour. Pure.
"""

from __future__ import annotations

from typing import Any

from producers.gateway.batch import JSON
from producers.gateway.framing import AVRO_BATCH

_REASONS = ["invalid_field", "undecodable", "unknown_schema", "too_large"]


def _error(description: str, reasons: list[str], retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            JSON: {
                "schema": {
                    "$ref": "#/components/schemas/Error",
                    "properties": {"error": {"enum": reasons}},
                }
            }
        },
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying (integer).",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def openapi_document(
    *, max_body_bytes: int, max_events: int, max_event_bytes: int, version: str = "1.0.0"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a gateway with these limits."""
    batch_result = {"$ref": "#/components/schemas/BatchResult"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Candor capture gateway",
            "version": version,
            "description": (
                "Publishes capture events of one device to Kafka (`capture.events`) for "
                "clients that cannot embed the Python SDK. Each device authenticates with "
                "its own bearer token and may publish only its own events. An answer "
                "with `accepted: n` means those n events are durable in Kafka (acks=all). "
                "Batches are validated per event: valid events are published even when "
                "others in the batch are rejected. Retrying a batch is safe: events carry "
                "client-chosen `event_id`s and the pipeline deduplicates on them."
            ),
        },
        "components": {
            "securitySchemes": {"device": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(max_events),
        },
        "security": [{"device": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Publish a batch of capture events",
                    "operationId": "publishEvents",
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"At most {max_body_bytes} bytes and {max_events} events; each "
                            f"event at most {max_event_bytes} bytes once Avro-encoded. "
                            f"`{AVRO_BATCH}`: repeated frames of a 4-byte big-endian "
                            "length followed by one Avro single-object encoded "
                            "CaptureEvent (marker C3 01, 8-byte CRC-64-AVRO fingerprint, "
                            "body). The gateway sets `received_ts`."
                        ),
                        "content": {
                            JSON: {"schema": {"$ref": "#/components/schemas/Batch"}},
                            AVRO_BATCH: {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Every event is acknowledged by Kafka.",
                            "content": {JSON: {"schema": batch_result}},
                        },
                        "400": {
                            "description": (
                                "Some events were rejected (listed by index; the others "
                                "were published), or the body is unreadable (`Error`: "
                                "bad_json, bad_framing, empty_batch, too_many_events)."
                            ),
                            "content": {
                                JSON: {
                                    "schema": {
                                        "oneOf": [
                                            batch_result,
                                            {"$ref": "#/components/schemas/Error"},
                                        ]
                                    }
                                }
                            },
                        },
                        "401": _error(
                            "Missing, unknown or expired token.",
                            ["missing_token", "invalid_token", "expired_token"],
                        ),
                        "403": _error(
                            "An event names another device, subject or org than the "
                            "token; nothing of the batch was published.",
                            ["forged_device"],
                        ),
                        "413": _error("Body too large.", ["body_too_large"]),
                        "415": _error("Unsupported Content-Type.", ["unsupported_media_type"]),
                        "429": _error("Device over its event rate.", ["rate_limited"], True),
                        "503": _error(
                            "Kafka did not acknowledge the batch; nothing is promised, resend it.",
                            ["queue_full", "msg_timed_out", "unavailable"],
                            True,
                        ),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "The gateway is serving."}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "Prometheus text format."}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 JSON."}},
                }
            },
        },
    }


def _schemas(max_events: int) -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "Batch": {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_events,
                    "items": {"$ref": "#/components/schemas/CaptureEvent"},
                }
            },
        },
        "CaptureEvent": {
            "type": "object",
            "description": (
                "The shared contract envelope (schemas/avro/candor.capture.v1/"
                "CaptureEvent); the payload is validated against the Avro schema."
            ),
            "required": [
                "event_id",
                "org_id",
                "subject_id",
                "device_id",
                "seq",
                "ts",
                "app",
                "payload",
            ],
            "properties": {
                "event_id": {"type": "string", "format": "uuid"},
                "org_id": {"type": "string"},
                "subject_id": {"type": "string"},
                "device_id": {"type": "string"},
                "seq": {
                    "type": "integer",
                    "minimum": 0,
                    "description": (
                        "Per-device sequence number, strictly increasing in the order the "
                        "device captured its events; the pipeline deduplicates on it. An "
                        "event whose seq was already passed on is a duplicate and is "
                        "dropped (a safe retry). An event whose seq is below one the "
                        "device already sent (sent out of order) is accepted, stored, and "
                        "never silent: it carries `seq_regression` in its `redactions` "
                        "trail (ClickHouse view `seq_regressions`), is counted in the "
                        "worker metric `candor_worker_seq_regressions_total{device_id}`, "
                        "and does not take part in the device's actions (it arrived after "
                        "later ones were reduced)."
                    ),
                },
                "ts": {"type": "integer", "description": "event time, micros since epoch UTC"},
                "received_ts": {
                    "type": ["integer", "null"],
                    "description": "ignored; set by the gateway",
                },
                "app": {
                    "type": "object",
                    "required": ["app_name"],
                    "properties": {
                        "app_name": {"type": "string"},
                        "window_title": nullable_string,
                        "url_host": nullable_string,
                    },
                },
                "payload": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {
                            "enum": [
                                "KeyInput",
                                "MouseMove",
                                "MouseClick",
                                "Scroll",
                                "WindowFocus",
                                "ScreenFrame",
                                "IdeEdit",
                                "TerminalCommand",
                                "ActivityState",
                            ]
                        }
                    },
                },
                "redactions": {"type": "array", "items": {"type": "string"}},
                "consent_version": {"type": ["integer", "null"]},
            },
        },
        "BatchResult": {
            "type": "object",
            "required": ["accepted", "rejected"],
            "properties": {
                "accepted": {"type": "integer", "description": "events durable in Kafka"},
                "rejected": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["index", "reason", "detail"],
                        "properties": {
                            "index": {"type": "integer"},
                            "reason": {"enum": _REASONS},
                            "detail": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        },
    }
