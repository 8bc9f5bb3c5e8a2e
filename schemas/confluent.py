"""Confluent Schema Registry wire format, for topics shared with Confluent tooling.

Wire format: ``00 | schema id: 4 bytes, big-endian | Avro binary body``. The
ids are whatever a Schema Registry assigned; this module does not talk to a
registry, it takes the mapping ``{schema id: (record name, version)}`` (built
once at startup by whoever registered the schemas) and frames messages with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.codec import Codec, Datum
from schemas.errors import Undecodable, UnknownSchema
from schemas.registry import SchemaVersion

MAGIC = b"\x00"
HEADER_SIZE = 5


class ConfluentCodec:
    """Encodes/decodes Confluent-framed messages through a `Codec`; immutable."""

    def __init__(self, codec: Codec, schema_ids: Mapping[int, tuple[str, int]]) -> None:
        """Bind registry ids to versions; raises `UnknownSchema` for an unknown version."""
        self._codec = codec
        self._by_id: dict[int, SchemaVersion] = {}
        self._header: dict[str, bytes] = {}
        for schema_id, (name, version) in schema_ids.items():
            sv = codec.registry.get(name, version)
            self._by_id[schema_id] = sv
            self._header[sv.fullname + f"#{sv.version}"] = MAGIC + schema_id.to_bytes(4, "big")

    def encode(self, name: str, datum: Mapping[str, Any]) -> bytes:
        """Encode with the current version of ``name``; raises `UnknownSchema` if it has no id."""
        current = self._codec.current(name)
        header = self._header.get(current.fullname + f"#{current.version}")
        if header is None:
            raise UnknownSchema(f"{current.fullname} v{current.version} has no schema id")
        return self._codec.encode_with_header(name, datum, header)

    def decode(self, data: bytes) -> tuple[str, Datum]:
        """Return ``(short name, datum)``.

        Raises only `Undecodable`, `UnknownSchema` or `InvalidField`, for any input.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise Undecodable(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < HEADER_SIZE or data[:1] != MAGIC:
            raise Undecodable("no Confluent header (magic 0 + 4-byte schema id)")
        schema_id = int.from_bytes(data[1:HEADER_SIZE], "big")
        version = self._by_id.get(schema_id)
        if version is None:
            raise UnknownSchema(f"schema id {schema_id} is not mapped")
        return version.name, self._codec.decode_body(version, data, HEADER_SIZE)
