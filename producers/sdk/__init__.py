"""The capture SDK: `CaptureClient` (per-device batching with linger, idempotent
producer, acks=all, spool, flush on shutdown) and what it is built from."""
