"""Training export: consented trajectories (ordered actions per session) as shards + manifest.

Who is exported: subjects whose *current* consent (highest version in
``consent_ledger``) includes ``training_use`` and who have no ``erase`` row in
``audit_log``. What: one row per session (``session_hint``; actions without
one are grouped per subject, device and day), with its actions in time order,
each carrying ``observation_ref`` and its app context. Where: ``out_dir`` holds
``part-00000.parquet`` (or ``.jsonl``) shards and ``manifest.json`` (range,
row counts, schema, consent versions used, sha256 per shard). The subject
list is recorded in the ``exports`` table (and the export in ``audit_log``),
never in the manifest, so the erasure process can find which exports held a
person without the dataset naming anyone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from schemas.extras import MissingExtra
from sinks.rows import ACTION_COLUMNS
from sinks.settings import SinkSettings

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ModuleNotFoundError as err:  # the core install runs without the export extra
    raise MissingExtra.of(err, "export", "the dataset export (sinks.export)") from err

SHARD_ROWS = 5_000
FORMATS = ("parquet", "jsonl")

_STEP_FIELDS = (
    "action_id",
    "kind",
    "start_ts",
    "end_ts",
    "text",
    "chord",
    "button",
    "x",
    "y",
    "path",
    "dx",
    "dy",
    "command",
    "app_name",
    "window_title",
    "observation_ref",
    "event_count",
    "redactions",
)

STEP_TYPE = pa.struct(
    [
        ("action_id", pa.string()),
        ("kind", pa.string()),
        ("start_ts", pa.timestamp("us", tz="UTC")),
        ("end_ts", pa.timestamp("us", tz="UTC")),
        ("text", pa.string()),
        ("chord", pa.string()),
        ("button", pa.string()),
        ("x", pa.int32()),
        ("y", pa.int32()),
        (
            "path",
            pa.list_(pa.struct([("dt_ms", pa.int32()), ("x", pa.int32()), ("y", pa.int32())])),
        ),
        ("dx", pa.int32()),
        ("dy", pa.int32()),
        ("command", pa.string()),
        ("app_name", pa.string()),
        ("window_title", pa.string()),
        ("observation_ref", pa.string()),
        ("event_count", pa.int64()),
        ("redactions", pa.list_(pa.string())),
    ]
)

TRAJECTORY_SCHEMA = pa.schema(
    [
        ("trajectory_id", pa.string()),
        ("org_id", pa.string()),
        ("subject_id", pa.string()),
        ("device_id", pa.string()),
        ("consent_version", pa.int64()),
        ("start_ts", pa.timestamp("us", tz="UTC")),
        ("end_ts", pa.timestamp("us", tz="UTC")),
        ("actions", pa.list_(STEP_TYPE)),
    ]
)


class ExportError(RuntimeError):
    """Base of export failures."""


class InvalidExportRange(ExportError):
    """The time range is malformed (not datetimes/ints) or empty (end <= start)."""


class OutputDirNotEmpty(ExportError):
    """``out_dir`` exists and holds files: an export never overwrites another."""


class UnsafeOutputDir(ExportError):
    """``out_dir`` is a symlink, not a directory, or not owned by this user."""


class UnknownFormat(ExportError):
    """``fmt`` is not one of `FORMATS`."""


@dataclass(frozen=True)
class ExportProgress:
    """Reported after each shard."""

    shards: int
    trajectories: int
    actions: int


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    export_id: str
    out_dir: Path
    shards: list[Path]
    trajectories: int
    actions: int
    subjects: int
    manifest_sha256: str


def to_micros(value: datetime | int) -> int:
    """A time as integer microseconds since the epoch (naive datetimes are UTC)."""
    if isinstance(value, bool) or not isinstance(value, datetime | int):
        raise InvalidExportRange(f"a time must be a datetime or micros, got {value!r}")
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def check_request(
    start: datetime | int, end: datetime | int, out_dir: Path, fmt: str
) -> tuple[int, int]:
    """Validate an export request; return the range in micros. Reads ``out_dir`` only."""
    lo, hi = to_micros(start), to_micros(end)
    if hi <= lo:
        raise InvalidExportRange(f"empty range: end {hi} <= start {lo}")
    if fmt not in FORMATS:
        raise UnknownFormat(f"format {fmt!r}; expected one of {FORMATS}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputDirNotEmpty(f"{out_dir} exists and is not an empty directory")
    return lo, hi


ELIGIBLE_SQL = """
SELECT subject_id, max(version) AS current_version
FROM consent_ledger
GROUP BY subject_id
HAVING has(argMax(scopes, version), 'training_use')
   AND subject_id NOT IN (SELECT subject FROM audit_log WHERE action = 'erase')
"""

ACTIONS_SQL = f"""
SELECT {", ".join(ACTION_COLUMNS)}
FROM actions FINAL
WHERE start_ts >= fromUnixTimestamp64Micro({{start:Int64}}, 'UTC')
  AND start_ts < fromUnixTimestamp64Micro({{end:Int64}}, 'UTC')
  AND subject_id IN (
      SELECT subject_id FROM consent_ledger GROUP BY subject_id
      HAVING has(argMax(scopes, version), 'training_use'))
  AND subject_id NOT IN (SELECT subject FROM audit_log WHERE action = 'erase')
ORDER BY subject_id, device_id, start_ts, action_id
"""


def group_trajectories(
    actions: Iterator[dict[str, Any]], versions: dict[str, int]
) -> Iterator[dict[str, Any]]:
    """Group actions (sorted by subject, device, start) into trajectories. Pure.

    A subject missing from ``versions`` (consent withdrawn between the two
    reads) is skipped. Trajectories come out per subject and device, each
    with its actions in time order.
    """
    open_: dict[str, dict[str, Any]] = {}
    current: tuple[str, str] | None = None
    for action in actions:
        subject = action["subject_id"]
        if subject not in versions:
            continue
        key = (subject, action["device_id"])
        if key != current:
            yield from _close(open_)
            current = key
        start = action["start_ts"]
        tid = action["session_hint"] or (
            f"{subject}:{action['device_id']}:day-{to_micros(start) // 86_400_000_000}"
        )
        traj = open_.setdefault(
            tid,
            {
                "trajectory_id": tid,
                "org_id": action["org_id"],
                "subject_id": subject,
                "device_id": action["device_id"],
                "consent_version": versions[subject],
                "start_ts": start,
                "end_ts": action["end_ts"],
                "actions": [],
            },
        )
        traj["end_ts"] = max(traj["end_ts"], action["end_ts"])
        step = {f: action[f] for f in _STEP_FIELDS}
        # named tuples come back as dicts from clickhouse-connect, plain ones as tuples
        step["path"] = [
            p if isinstance(p, dict) else {"dt_ms": p[0], "x": p[1], "y": p[2]}
            for p in action["path"]
        ]
        traj["actions"].append(step)
    yield from _close(open_)


def _close(open_: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for tid in sorted(open_, key=lambda t: (open_[t]["start_ts"], t)):
        yield open_[tid]
    open_.clear()


def export(
    settings: SinkSettings,
    start: datetime | int,
    end: datetime | int,
    out_dir: Path,
    fmt: str = "parquet",
    progress: Callable[[ExportProgress], None] | None = None,
    actor: str = "candor-export",
    client: Client | None = None,
) -> ExportResult:
    """Write the consented trajectories of ``[start, end)`` to ``out_dir``.

    Raises `InvalidExportRange`, `UnknownFormat`, `OutputDirNotEmpty` before
    touching anything. Blocks on ClickHouse and disk; records the export in
    ``exports`` and ``audit_log`` after ``manifest.json`` is written.
    """
    from backends.clickhouse.connection import connect

    lo, hi = check_request(start, end, Path(out_dir), fmt)
    out = Path(out_dir)
    client = client or connect(settings)
    versions = {str(s): int(v) for s, v in client.query(ELIGIBLE_SQL).result_rows}
    stream = client.query_rows_stream(ACTIONS_SQL, parameters={"start": lo, "end": hi})
    _claim_dir(out)
    shards: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    totals = [0, 0]

    def flush() -> None:
        if not batch:
            return
        path = out / f"part-{len(shards):05d}.{fmt}"
        _create_private(path)
        _write_shard(path, batch, fmt)
        actions = sum(len(t["actions"]) for t in batch)
        shards.append(
            {"path": path.name, "rows": len(batch), "actions": actions, "sha256": _sha256(path)}
        )
        totals[0] += len(batch)
        totals[1] += actions
        batch.clear()
        if progress is not None:
            progress(ExportProgress(len(shards), totals[0], totals[1]))

    with stream:
        dicts = (dict(zip(ACTION_COLUMNS, row, strict=True)) for row in stream)
        for trajectory in group_trajectories(dicts, versions):
            used[trajectory["subject_id"]] = trajectory["consent_version"]
            batch.append(trajectory)
            if len(batch) >= SHARD_ROWS:
                flush()
        flush()
    export_id = str(uuid.uuid4())
    manifest = {
        "export_id": export_id,
        "created_at": datetime.now(UTC).isoformat(),
        "range": {"start_micros": lo, "end_micros": hi},
        "format": fmt,
        "rows": totals[0],
        "actions": totals[1],
        "shards": shards,
        "schema": [{"name": f.name, "type": str(f.type)} for f in TRAJECTORY_SCHEMA],
        "consent": {
            "scope": "training_use",
            "excluded": "erased subjects",
            "policy_versions": _histogram(used.values()),
        },
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    _create_private(out / "manifest.json")
    (out / "manifest.json").write_bytes(manifest_bytes)
    os.unlink(out / _CLAIM)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    subjects = sorted(used)
    record_export(
        client,
        export_id,
        lo,
        hi,
        fmt,
        used,
        [str(out / sh["path"]) for sh in shards],
        {sh["path"]: sh["rows"] for sh in shards},
        totals[0],
        digest,
        actor,
        {"export_id": export_id, "subjects": len(subjects), "rows": totals[0], "dir": str(out)},
    )
    return ExportResult(
        export_id,
        out,
        [out / s["path"] for s in shards],
        totals[0],
        totals[1],
        len(subjects),
        digest,
    )


# Held in the output directory while an export writes there: the exclusive
# create of this file is what makes "empty, and mine" one atomic step.
_CLAIM = ".candor-export.claim"


def _claim_dir(out: Path) -> None:
    """Make ``out`` this export's private directory (mode 0700).

    Creates it, or takes an existing empty directory of this user; a symlink
    is refused (``O_NOFOLLOW``), never followed. The claim file, created with
    ``O_EXCL``, makes a second export into the same directory fail even when
    both saw it empty. Raises `UnsafeOutputDir` or `OutputDirNotEmpty`.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # an existing one is checked below
        os.mkdir(out, 0o700)
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as err:
        raise UnsafeOutputDir(f"{out} is a symlink or not a directory: {err.strerror}") from None
    try:
        if os.fstat(fd).st_uid != os.getuid():
            raise UnsafeOutputDir(f"{out} belongs to another user")
        os.fchmod(fd, 0o700)
        try:
            os.close(
                os.open(
                    _CLAIM, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd
                )
            )
        except FileExistsError:
            raise OutputDirNotEmpty(f"{out}: another export writes there") from None
        if os.listdir(fd) != [_CLAIM]:
            os.unlink(_CLAIM, dir_fd=fd)
            raise OutputDirNotEmpty(f"{out} exists and is not an empty directory")
    finally:
        os.close(fd)


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600; refuses an existing file or a symlink
    (``O_EXCL``), so the writes that follow land in a file this export made."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


def _write_shard(path: Path, trajectories: Sequence[dict[str, Any]], fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(
            pa.Table.from_pylist(list(trajectories), schema=TRAJECTORY_SCHEMA),
            path,
            compression="zstd",
        )
        return
    with path.open("w") as fh:
        for t in trajectories:
            fh.write(json.dumps(t, default=_json_default, ensure_ascii=False) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return to_micros(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _histogram(values: Iterator[int] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


def record_export(
    client: Any,
    export_id: str,
    lo: int,
    hi: int,
    fmt: str,
    used: Mapping[str, int],
    shard_paths: list[str],
    row_counts: dict[str, int],
    total_rows: int,
    manifest_sha256: str,
    actor: str,
    detail: dict[str, Any],
) -> None:
    """Write an export's row in the `exports` ledger (its subjects with the consent
    version each was exported under) and its `audit_log` entry. Blocks; raises the
    client's errors."""
    subjects = sorted(used)
    client.insert(
        "exports",
        [
            [
                export_id,
                int(datetime.now(UTC).timestamp() * 1_000_000),
                lo,
                hi,
                fmt,
                subjects,
                [used[s] for s in subjects],
                shard_paths,
                row_counts,
                total_rows,
                manifest_sha256,
            ]
        ],
        column_names=[
            "export_id",
            "created_at",
            "range_start",
            "range_end",
            "format",
            "subjects",
            "consent_versions",
            "shard_paths",
            "row_counts",
            "total_rows",
            "manifest_sha256",
        ],
    )
    client.insert(
        "audit_log",
        [[actor, "export", "", json.dumps(detail)]],
        column_names=["actor", "action", "subject", "detail"],
    )
