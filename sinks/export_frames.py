"""The computer-use export profile: episodes of (screenshot, action) steps.

``candor export --profile computer-use`` writes what computer-use training
stacks load directly (the shape of public datasets such as AgentNet):

- one row per step, grouped in episodes (a session trajectory of
  `sinks.export.group_trajectories`), ``step_index`` in time order;
- ``image``: the last frame seen *before* the action (``observation_ref``, never
  one after), decrypted from the frame store, as ``{"bytes", "path"}`` - the
  Parquet layout Hugging Face ``datasets`` decodes into images (the shard's
  ``huggingface`` schema metadata declares it an ``Image`` feature); None when
  no frame preceded the action or it is no longer readable;
- the action in PyAutoGUI form, as code (``click(x=0.4121, y=0.2930, button='left')``,
  ``write('hello')``, ``hotkey('ctrl', 's')``, ``scroll(-3)``) and as fields
  (``action_type``, ``x``/``y`` normalised to the frame's size in [0, 1],
  ``button``, ``keys``, ``text``);
- app context (app, window title) and timestamps.

Who: exactly the subjects `sinks.export` exports (current consent with
``training_use``, never erased); a frame is decrypted only for them. Out:
``data/train-NNNNN.parquet``, ``README.md`` (a dataset card with YAML
metadata: features, counts, consent basis, redaction trail summary) and
``manifest.json``; the export is recorded in ``exports`` and ``audit_log``
like every export, so erasure lists it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from backends.frame_store import FrameStore, FrameStoreError
from privacy.frame_sealing import open_frame
from privacy.keystore import KeyStoreError
from privacy.shredding import KeyLookup, UndecryptableField
from schemas.extras import MissingExtra
from sinks.export import (
    ACTIONS_SQL,
    ELIGIBLE_SQL,
    ExportResult,
    check_request,
    group_trajectories,
    record_export,
)

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ModuleNotFoundError as err:  # the core install runs without the export extra
    raise MissingExtra.of(err, "export", "the computer-use export (sinks.export_frames)") from err
from sinks.rows import ACTION_COLUMNS
from sinks.settings import SinkSettings

__all__ = ["PROFILE", "STEP_SCHEMA", "export_computer_use", "pyautogui_action"]

PROFILE = "computer-use"
SHARD_STEPS = 2_000

STEP_SCHEMA = pa.schema(
    [
        ("episode_id", pa.string()),
        ("step_index", pa.int32()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("action_code", pa.string()),
        ("action_type", pa.string()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("button", pa.string()),
        ("keys", pa.list_(pa.string())),
        ("text", pa.string()),
        ("app_name", pa.string()),
        ("window_title", pa.string()),
        ("start_ts", pa.timestamp("us", tz="UTC")),
        ("end_ts", pa.timestamp("us", tz="UTC")),
        ("frame_width", pa.int32()),
        ("frame_height", pa.int32()),
        ("observation_ref", pa.string()),
        ("org_id", pa.string()),
        ("device_id", pa.string()),
        ("consent_version", pa.int64()),
        ("redactions", pa.list_(pa.string())),
    ]
)


def _value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


# The `datasets` Features of STEP_SCHEMA, stored in each shard's metadata so
# `load_dataset("parquet", ...)` decodes `image` into a PIL image.
HF_FEATURES: dict[str, Any] = {
    "episode_id": _value("string"),
    "step_index": _value("int32"),
    "image": {"_type": "Image"},
    "action_code": _value("string"),
    "action_type": _value("string"),
    "x": _value("float64"),
    "y": _value("float64"),
    "button": _value("string"),
    "keys": {"feature": _value("string"), "_type": "List"},
    "text": _value("string"),
    "app_name": _value("string"),
    "window_title": _value("string"),
    "start_ts": _value("timestamp[us, tz=UTC]"),
    "end_ts": _value("timestamp[us, tz=UTC]"),
    "frame_width": _value("int32"),
    "frame_height": _value("int32"),
    "observation_ref": _value("string"),
    "org_id": _value("string"),
    "device_id": _value("string"),
    "consent_version": _value("int64"),
    "redactions": {"feature": _value("string"), "_type": "List"},
}


@dataclass(frozen=True)
class Frame:
    """A decrypted observation: image bytes, its media type, size and redaction trail."""

    data: bytes
    media_type: str
    width: int
    height: int
    trail: Mapping[str, int]


def pyautogui_action(
    step: Mapping[str, Any], width: int | None, height: int | None
) -> dict[str, Any]:
    """The PyAutoGUI form of one exported action. Pure.

    Returns ``{"action_code", "action_type", "x", "y", "button", "keys", "text"}``.
    Coordinates are normalised by the frame's ``width``/``height`` (None when
    there is no frame); code carries them with four decimals. Kinds: click and
    drag -> ``click``/``dragTo``, typing -> ``write`` (backspaces as
    ``press('backspace')``), shortcut -> ``hotkey``, scroll -> ``scroll`` (dy,
    positive is down in Candor, so the sign flips), command -> ``write`` +
    ``press('enter')``, edit -> ``write``; any other kind -> ``action_type``
    as is with empty code.
    """
    kind = str(step.get("kind"))
    out: dict[str, Any] = {
        "action_code": "",
        "action_type": kind,
        "x": None,
        "y": None,
        "button": None,
        "keys": [],
        "text": None,
    }
    x, y = step.get("x"), step.get("y")
    if isinstance(x, int) and isinstance(y, int) and width and height:
        out["x"] = min(max(x / width, 0.0), 1.0)
        out["y"] = min(max(y / height, 0.0), 1.0)
    at = f"x={out['x']:.4f}, y={out['y']:.4f}" if out["x"] is not None else ""
    if kind in ("click", "drag"):
        button = str(step.get("button") or "left")
        out["button"] = button
        out["action_type"] = "click" if kind == "click" else "drag"
        verb = "click" if kind == "click" else "dragTo"
        out["action_code"] = f"{verb}({at}{', ' if at else ''}button={button!r})"
    elif kind in ("typing", "edit"):
        text = step.get("text")
        out["action_type"] = "write"
        out["text"] = text
        if isinstance(text, str):
            typed = text.lstrip("\b")
            presses = len(text) - len(typed)
            code = ["press('backspace')"] * presses
            if typed:
                code.append(f"write({typed!r})")
            out["action_code"] = "\n".join(code)
    elif kind == "shortcut":
        chord = step.get("chord")
        out["action_type"] = "hotkey"
        if isinstance(chord, str) and chord:
            keys = chord.split("+")
            out["keys"] = keys
            out["action_code"] = f"hotkey({', '.join(repr(k) for k in keys)})"
    elif kind == "scroll":
        clicks = -int(step.get("dy") or 0)
        out["action_type"] = "scroll"
        out["action_code"] = f"scroll({clicks}{', ' + at if at else ''})"
    elif kind == "command":
        command = step.get("command")
        out["action_type"] = "write"
        out["text"] = command
        out["keys"] = ["enter"]
        if isinstance(command, str):
            out["action_code"] = f"write({command!r})\npress('enter')"
    return out


def _open(store: FrameStore, keys: KeyLookup, subject: str, ref: str | None) -> Frame | None:
    if not ref or not ref.startswith("sha256:"):
        return None
    digest = ref.removeprefix("sha256:")
    try:
        opened = open_frame(store.get(subject, digest), keys, subject, digest)
    except (FrameStoreError, KeyStoreError, UndecryptableField, ValueError):
        return None  # missing, erased, or never uploaded: a step without an image
    h = opened.header
    return Frame(opened.data, h.media_type, h.width, h.height, h.trail)


def episode_steps(
    episode: Mapping[str, Any], frame: Callable[[str, str | None], Frame | None]
) -> Iterator[tuple[dict[str, Any], Frame | None]]:
    """The rows of one episode (a trajectory of `group_trajectories`) with their
    frames; ``frame(subject, ref)`` opens one (None: no image)."""
    cache: dict[str | None, Frame | None] = {}
    for index, step in enumerate(episode["actions"]):
        ref = step.get("observation_ref")
        if ref not in cache:
            cache[ref] = frame(episode["subject_id"], ref)
        found = cache[ref]
        action = pyautogui_action(
            step, found.width if found else None, found.height if found else None
        )
        suffix = ".webp" if found is not None and found.media_type == "image/webp" else ".png"
        row = {
            "episode_id": episode["trajectory_id"],
            "step_index": index,
            "image": None
            if found is None
            else {"bytes": found.data, "path": f"{str(ref).removeprefix('sha256:')}{suffix}"},
            **action,
            "app_name": step.get("app_name"),
            "window_title": step.get("window_title"),
            "start_ts": step["start_ts"],
            "end_ts": step["end_ts"],
            "frame_width": found.width if found else None,
            "frame_height": found.height if found else None,
            "observation_ref": ref if found is not None else None,
            "org_id": episode["org_id"],
            "device_id": episode["device_id"],
            "consent_version": episode["consent_version"],
            "redactions": list(step.get("redactions") or []),
        }
        yield row, found


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(list(rows), schema=STEP_SCHEMA)
    meta = {b"huggingface": json.dumps({"info": {"features": HF_FEATURES}}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_computer_use(
    settings: SinkSettings,
    start: datetime | int,
    end: datetime | int,
    out_dir: Path,
    *,
    store: FrameStore,
    keys: KeyLookup,
    actor: str = "candor-export",
    client: Client | None = None,
) -> ExportResult:
    """Write the computer-use dataset of ``[start, end)`` to ``out_dir``.

    ``keys`` decrypts frames (only eligible subjects' frames are ever read).
    Raises `sinks.export.InvalidExportRange` / `OutputDirNotEmpty` before
    touching anything. Blocks on ClickHouse, the frame store and disk; records
    the export in ``exports`` and ``audit_log`` after the card and manifest are
    written. ``ExportResult.trajectories`` counts episodes, ``.actions`` steps.
    """
    from backends.clickhouse.connection import connect

    lo, hi = check_request(start, end, Path(out_dir), "parquet")
    out = Path(out_dir)
    client = client or connect(settings)
    versions = {str(s): int(v) for s, v in client.query(ELIGIBLE_SQL).result_rows}
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    trail: dict[str, int] = {}
    seen_frames: set[tuple[str, str]] = set()
    counts = {"episodes": 0, "steps": 0, "with_image": 0}

    def flush() -> None:
        if not batch:  # an empty export has no shard (datasets cannot read a 0-row file)
            return
        path = data_dir / f"train-{len(shards):05d}.parquet"
        _write(path, batch)
        shards.append({"path": f"data/{path.name}", "rows": len(batch), "sha256": _sha256(path)})
        batch.clear()

    def frame(subject: str, ref: str | None) -> Frame | None:
        return _open(store, keys, subject, ref)

    stream = client.query_rows_stream(ACTIONS_SQL, parameters={"start": lo, "end": hi})
    with stream:
        dicts = (dict(zip(ACTION_COLUMNS, row, strict=True)) for row in stream)
        for episode in group_trajectories(dicts, versions):
            used[episode["subject_id"]] = episode["consent_version"]
            counts["episodes"] += 1
            for row, found in episode_steps(episode, frame):
                batch.append(row)
                counts["steps"] += 1
                if found is not None:
                    counts["with_image"] += 1
                    key = (episode["subject_id"], str(row["observation_ref"]))
                    if key not in seen_frames:
                        seen_frames.add(key)
                        for rule, n in found.trail.items():
                            trail[rule] = trail.get(rule, 0) + n
                if len(batch) >= SHARD_STEPS:
                    flush()
        flush()
    export_id = str(uuid.uuid4())
    subjects = sorted(used)
    consent = {
        "scope": "training_use",
        "excluded": "erased subjects",
        "policy_versions": _histogram(used.values()),
    }
    (out / "README.md").write_text(
        _card(export_id, lo, hi, counts, len(seen_frames), len(subjects), consent, trail)
    )
    manifest = {
        "export_id": export_id,
        "profile": PROFILE,
        "created_at": datetime.now(UTC).isoformat(),
        "range": {"start_micros": lo, "end_micros": hi},
        "format": "parquet",
        "episodes": counts["episodes"],
        "steps": counts["steps"],
        "steps_with_image": counts["with_image"],
        "frames": len(seen_frames),
        "shards": shards,
        "features": HF_FEATURES,
        "consent": consent,
        "frame_redactions": dict(sorted(trail.items())),
        "card_sha256": _sha256(out / "README.md"),
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (out / "manifest.json").write_bytes(manifest_bytes)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    record_export(
        client,
        export_id,
        lo,
        hi,
        f"parquet:{PROFILE}",
        used,
        [str(out / sh["path"]) for sh in shards],
        {sh["path"]: sh["rows"] for sh in shards},
        counts["steps"],
        digest,
        actor,
        {
            "export_id": export_id,
            "profile": PROFILE,
            "subjects": len(subjects),
            "rows": counts["steps"],
            "dir": str(out),
        },
    )
    return ExportResult(
        export_id,
        out,
        [out / s["path"] for s in shards],
        counts["episodes"],
        counts["steps"],
        len(subjects),
        digest,
    )


def _histogram(values: Iterator[int] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


def _card(
    export_id: str,
    lo: int,
    hi: int,
    counts: Mapping[str, int],
    frames: int,
    subjects: int,
    consent: Mapping[str, Any],
    trail: Mapping[str, int],
) -> str:
    """The dataset card: YAML metadata (configs, features, split size) and prose."""
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*.parquet",
        "dataset_info:",
        "  features:",
    ]
    for name, feature in HF_FEATURES.items():
        lines.append(f"  - name: {name}")
        kind = feature["_type"]
        if kind == "Image":
            lines.append("    dtype: image")
        elif kind == "List":
            lines.append("    list: " + str(feature["feature"]["dtype"]))
        else:
            lines.append(f"    dtype: {feature['dtype']}")
    lines += [
        "  splits:",
        "  - name: train",
        f"    num_examples: {counts['steps']}",
        "task_categories:",
        "- image-text-to-text",
        "tags:",
        "- computer-use",
        "- candor",
        "---",
        "",
    ]
    versions = ", ".join(f"v{v}: {n}" for v, n in consent["policy_versions"].items()) or "none"
    redactions = "\n".join(f"| {rule} | {n} |" for rule, n in sorted(trail.items()))
    lines += [
        "# Candor computer-use export",
        "",
        f"Export `{export_id}`, actions from {_iso(lo)} to {_iso(hi)} (end exclusive).",
        "",
        "Each row is one step: the screenshot seen before the action (`image`), the action",
        "in PyAutoGUI form (`action_code`, and `action_type`, `x`/`y` normalised to [0, 1],",
        "`button`, `keys`, `text`), its app context and timestamps. Rows of one `episode_id`",
        "form a work session, ordered by `step_index`.",
        "",
        "## Counts",
        "",
        f"- episodes: {counts['episodes']}",
        f"- steps: {counts['steps']}",
        f"- steps with an image: {counts['with_image']}",
        f"- distinct frames: {frames}",
        f"- people (pseudonymous, not listed here): {subjects}",
        "",
        "## Consent basis",
        "",
        "Only people whose current consent includes `training_use` (and `screen_frames` for",
        "their screens to have been stored) and who were never erased are included.",
        f"Consent policy versions used: {versions}. An erasure later lists this export",
        "for recall.",
        "",
        "## Redaction",
        "",
        "Typed text and titles went through Candor's redaction rules; every frame was read",
        "with OCR before storage and the word boxes the same rules flag were blacked out.",
        "Boxes blacked out in the frames of this dataset, by rule:",
        "",
        "| rule | boxes |",
        "|---|---|",
        redactions or "| (none) | 0 |",
        "",
    ]
    return "\n".join(lines)


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat()
