"""Sealed frames: a redacted frame encrypted under its subject's data key.

A sealed frame is one self-describing blob, the unit the frame store keeps::

    b"CFR1" || u32 big-endian header length || header JSON || nonce || AES-256-GCM ciphertext

The header is in clear and holds no content: the key id, media type, size,
the redaction trail (boxes per rule) and when it was sealed. The ciphertext
is bound by associated data to the subject, the frame's ref and the header, so
a blob moved to another subject or ref, or a header edited, does not open.
Destroying the subject's data key (erasure) makes every sealed frame of theirs
unreadable at once, wherever copies went.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.keystore import DataKey, UnknownDataKey
from privacy.shredding import KeyLookup, UndecryptableField

__all__ = ["MAGIC", "FrameHeader", "OpenedFrame", "open_frame", "read_header", "seal_frame"]

MAGIC = b"CFR1"
_NONCE = 12
_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The clear part of a sealed frame."""

    key_id: str
    media_type: str
    width: int
    height: int
    sealed_at: int
    trail: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "media_type": self.media_type,
            "width": self.width,
            "height": self.height,
            "sealed_at": self.sealed_at,
            "trail": dict(self.trail),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FrameHeader:
        return cls(
            str(data["key_id"]),
            str(data["media_type"]),
            int(data["width"]),
            int(data["height"]),
            int(data["sealed_at"]),
            {str(k): int(v) for k, v in dict(data.get("trail") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class OpenedFrame:
    """A decrypted frame: its encoded image bytes and its header."""

    data: bytes
    header: FrameHeader


def _aad(subject: str, ref: str, header: bytes) -> bytes:
    return b"candor.frame.v1|" + subject.encode() + b"|" + ref.encode() + b"|" + header


def seal_frame(data: bytes, key: DataKey, subject: str, ref: str, header: FrameHeader) -> bytes:
    """Return ``data`` sealed under ``key`` (``header.key_id`` must be ``key.key_id``).
    A fresh random nonce per call."""
    if header.key_id != key.key_id:
        raise ValueError("header.key_id does not name the sealing key")
    head = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode()
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key.key).encrypt(nonce, data, _aad(subject, ref, head))
    return MAGIC + _LEN.pack(len(head)) + head + nonce + sealed


def _split(blob: bytes) -> tuple[bytes, bytes]:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _LEN.size:
        raise UndecryptableField("not a sealed frame")
    (size,) = _LEN.unpack_from(blob, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    head, body = blob[start : start + size], blob[start + size :]
    if len(head) != size or len(body) < _NONCE + 16:
        raise UndecryptableField("truncated sealed frame")
    return head, body


def read_header(blob: bytes) -> FrameHeader:
    """The clear header of a sealed frame; raises :class:`UndecryptableField` if malformed."""
    head, _ = _split(blob)
    try:
        return FrameHeader.from_json(json.loads(head))
    except (ValueError, KeyError, TypeError):
        raise UndecryptableField("malformed sealed frame header") from None


def open_frame(blob: bytes, keys: KeyLookup, subject: str, ref: str) -> OpenedFrame:
    """Decrypt a sealed frame of ``subject`` stored under ``ref``.

    Raises ``SubjectErased`` when the key was destroyed and
    :class:`UndecryptableField` when the blob is malformed, its key unknown or
    authentication fails (wrong subject, ref, key or an edited header)."""
    head, body = _split(blob)
    header = read_header(blob)
    try:
        key = keys.key_for_id(header.key_id)
    except UnknownDataKey:
        raise UndecryptableField(f"unknown data key {header.key_id}") from None
    try:
        data = AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], _aad(subject, ref, head))
    except InvalidTag:
        raise UndecryptableField("sealed frame failed authentication") from None
    return OpenedFrame(data, header)
