"""The frame store: sealed frames (see `privacy.frame_sealing`), content-addressed, per subject.

One interface, two backends:

- `FilesystemFrameStore` (the embedded default): ``<root>/<subject dir>/<aa>/<sha256 hex>``,
  written atomically (temporary file, fsync, rename, fsync of the directory);
- `S3FrameStore` (production): one object per frame, ``<prefix><subject dir>/<sha256 hex>``,
  through boto3 against any S3-compatible server.

The subject directory is a hash of the subject id (``s-`` + 32 hex characters),
so neither paths nor object keys name anyone. Writes are idempotent: a second
`put` of the same ref for the same subject is a no-op answering False. Frames
are only ever written sealed; the store never sees pixels in clear. Every
method blocks on disk or the network: call it from a thread, not an event loop.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "FilesystemFrameStore",
    "FrameNotFound",
    "FrameStore",
    "FrameStoreError",
    "FrameStoreSettings",
    "S3FrameStore",
    "open_frame_store",
    "subject_dir",
]

_HEX = re.compile(r"^[0-9a-f]{64}$")


class FrameStoreError(Exception):
    """Base of the frame store's errors (I/O or the S3 server's refusals)."""


class FrameNotFound(FrameStoreError, LookupError):
    """No frame with this ref is stored for this subject."""


class FrameStoreSettings(BaseModel):
    """Where frames go (``CANDOR_FRAMES__*``). ``backend`` "filesystem" keeps them
    under ``directory`` (default ``$CANDOR_HOME/frames``); "s3" in ``bucket`` at
    ``endpoint_url`` (None: AWS) under ``prefix``. ``max_frame_bytes`` bounds an
    upload, ``ocr_workers`` sizes the gateway's redaction process pool,
    ``frames_per_token_s``/``frame_burst_per_token`` rate-limit each device token;
    ``gateway`` turns the gateway's ``PUT /v1/frames`` on (it then needs the
    consent registry and the key store at start-up)."""

    model_config = ConfigDict(frozen=True)

    gateway: bool = False
    backend: Literal["filesystem", "s3"] = "filesystem"
    directory: Path | None = None
    bucket: str = "candor-frames"
    prefix: str = "frames/"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    max_frame_bytes: int = 8 * 1024 * 1024
    ocr_workers: int = 2
    # Per gateway token: frames/s and burst (OCR costs ~0.7 s of CPU per frame).
    frames_per_token_s: float = Field(2.0, gt=0)
    frame_burst_per_token: float = Field(30.0, ge=1)


def subject_dir(subject: str) -> str:
    """The non-identifying directory (or key part) of ``subject``'s frames."""
    return "s-" + hashlib.sha256(b"candor.frames|" + subject.encode()).hexdigest()[:32]


def _check_ref(digest: str) -> str:
    if not _HEX.match(digest):
        raise ValueError(f"a frame ref is 64 lowercase hex characters, got {digest!r}")
    return digest


class FrameStore(ABC):
    """Sealed frames by (subject, sha256 hex of the redacted-before-upload bytes)."""

    @abstractmethod
    def put(self, subject: str, digest: str, blob: bytes) -> bool:
        """Store ``blob``; return False (and change nothing) when it is already there.
        Atomic: readers see the whole blob or nothing."""

    @abstractmethod
    def get(self, subject: str, digest: str) -> bytes:
        """Return the stored blob; raise :class:`FrameNotFound`."""

    @abstractmethod
    def exists(self, subject: str, digest: str) -> bool:
        """Whether a frame is stored under this ref for this subject."""

    @abstractmethod
    def list(self, subject: str) -> list[str]:
        """The refs (hex) stored for ``subject``, sorted."""

    @abstractmethod
    def delete_subject(self, subject: str) -> int:
        """Delete every frame of ``subject``; return how many there were."""


class FilesystemFrameStore(FrameStore):
    """The embedded backend: files under ``root``. Safe for several processes
    (rename is atomic; a racing second writer of the same ref writes the same
    bytes' seal and one of them wins)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, subject: str, digest: str) -> Path:
        return self.root / subject_dir(subject) / digest[:2] / _check_ref(digest)

    def put(self, subject: str, digest: str, blob: bytes) -> bool:
        path = self._path(subject, digest)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True

    def get(self, subject: str, digest: str) -> bytes:
        try:
            return self._path(subject, digest).read_bytes()
        except FileNotFoundError:
            raise FrameNotFound(f"no frame {digest} for this subject") from None

    def exists(self, subject: str, digest: str) -> bool:
        return self._path(subject, digest).is_file()

    def list(self, subject: str) -> list[str]:
        base = self.root / subject_dir(subject)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.glob("??/*") if _HEX.match(p.name))

    def delete_subject(self, subject: str) -> int:
        base = self.root / subject_dir(subject)
        if not base.is_dir():
            return 0
        count = 0
        for path in sorted(base.glob("??/*"), reverse=True):
            if _HEX.match(path.name):
                count += 1
            path.unlink(missing_ok=True)
        for folder in sorted(base.glob("??"), reverse=True):
            folder.rmdir()
        base.rmdir()
        return count


class S3FrameStore(FrameStore):
    """The production backend: objects in ``bucket`` under ``prefix``.

    ``client`` is a boto3 S3 client (see :func:`s3_client`). Idempotence is a
    HEAD before the PUT (a race writes an equivalent seal twice, harmless).
    Deletion removes objects one by one (`DeleteObject`): bulk delete needs a
    checksum header some S3-compatible servers refuse.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "frames/") -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, subject: str, digest: str) -> str:
        return f"{self.prefix}{subject_dir(subject)}/{_check_ref(digest)}"

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call("create_bucket", Bucket=self.bucket)

    def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3, op)(**kwargs)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FrameNotFound(kwargs.get("Key", "")) from None
            raise FrameStoreError(f"S3 {op} failed: {code or err}") from err
        except BotoCoreError as err:
            raise FrameStoreError(f"S3 {op} failed: {err}") from err

    def put(self, subject: str, digest: str, blob: bytes) -> bool:
        if self.exists(subject, digest):
            return False
        self._call(
            "put_object",
            Bucket=self.bucket,
            Key=self._key(subject, digest),
            Body=blob,
            ContentType="application/octet-stream",
        )
        return True

    def get(self, subject: str, digest: str) -> bytes:
        found = self._call("get_object", Bucket=self.bucket, Key=self._key(subject, digest))
        return bytes(found["Body"].read())

    def exists(self, subject: str, digest: str) -> bool:
        try:
            self._call("head_object", Bucket=self.bucket, Key=self._key(subject, digest))
        except FrameNotFound:
            return False
        return True

    def _keys(self, subject: str) -> list[str]:
        keys: list[str] = []
        token: str | None = None
        prefix = f"{self.prefix}{subject_dir(subject)}/"
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            keys.extend(str(item["Key"]) for item in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return keys

    def list(self, subject: str) -> list[str]:
        return sorted(
            k.rsplit("/", 1)[-1] for k in self._keys(subject) if _HEX.match(k.rsplit("/", 1)[-1])
        )

    def delete_subject(self, subject: str) -> int:
        keys = self._keys(subject)
        for key in keys:
            self._call("delete_object", Bucket=self.bucket, Key=key)
        return len(keys)


def s3_client(settings: FrameStoreSettings) -> Any:
    """A boto3 S3 client for ``settings``, sending checksums only when an operation
    requires them (S3-compatible servers such as S3Proxy refuse the CRC32 headers
    boto3 sends by default)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=None
        if settings.access_key is None
        else settings.access_key.get_secret_value(),
        aws_secret_access_key=None
        if settings.secret_key is None
        else settings.secret_key.get_secret_value(),
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def open_frame_store(settings: FrameStoreSettings, home: Path) -> FrameStore:
    """The store ``settings`` describe (``home``: default root of the filesystem one).
    The S3 bucket is created when missing."""
    if settings.backend == "s3":
        store = S3FrameStore(s3_client(settings), settings.bucket, settings.prefix)
        store.ensure_bucket()
        return store
    return FilesystemFrameStore(settings.directory or home / "frames")
