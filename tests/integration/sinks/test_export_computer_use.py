"""The computer-use export against real ClickHouse and a frame store: the dataset
loads with Hugging Face `datasets` (offline, from the local files), its rows are
the consenting subjects' actions in ClickHouse, each with the frame seen before
it, and a subject without the training scope appears nowhere, images included."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import ensure_subject_key, load_keyset
from backends.frame_store import FilesystemFrameStore
from candor.settings import Settings, replace
from privacy.frame_sealing import FrameHeader, seal_frame
from sinks.export import ELIGIBLE_SQL
from sinks.export_frames import export_computer_use
from sinks.migrate import migrate
from sinks.rows import ACTION_COLUMNS, CONSENT_COLUMNS, action_row, consent_row
from tests.unit.sinks.sinks_samples import action, consent

pytestmark = pytest.mark.integration

MASTER = bytes(range(3, 35))


@pytest.fixture
def db_settings(settings: Settings, unique: str) -> Iterator[Settings]:
    own = replace(settings, clickhouse={"database": f"candor_cu_{unique}"})
    migrate(own)
    yield own
    connect(own, database="").command(f"DROP DATABASE IF EXISTS {own.clickhouse.database}")


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 100), colour).save(out, "PNG")
    return out.getvalue()


def test_export_loads_with_datasets_and_holds_only_consenting_subjects(
    db_settings: Settings, tmp_path: Path
) -> None:
    import hashlib

    client = connect(db_settings)
    client.insert(
        "consent_ledger",
        [
            consent_row(c)
            for c in (
                consent("alice", 1, ["activity_metadata", "screen_frames", "training_use"]),
                consent("bob", 1, ["activity_metadata", "screen_frames"]),
            )
        ],
        column_names=CONSENT_COLUMNS,
    )
    store = FilesystemFrameStore(tmp_path / "frames")
    refs: dict[str, str] = {}
    for subject, colour in (("alice", (200, 10, 10)), ("bob", (10, 200, 10))):
        key, _ = ensure_subject_key(client, MASTER, subject, "test")
        data = _png(colour)
        digest = hashlib.sha256(data).hexdigest()
        header = FrameHeader(key.key_id, "image/png", 200, 100, 1, {"email": 2})
        store.put(subject, digest, seal_frame(data, key, subject, digest, header))
        refs[subject] = f"sha256:{digest}"

    now = int(time.time() * 1_000_000)
    acts = []
    for subject in ("alice", "bob"):
        for n, kind in enumerate(("click", "typing", "shortcut", "scroll")):
            a = action(
                kind,
                subject=subject,
                start=now - 60_000_000 + n * 1_000_000,
                session=f"{subject}:d1:s",
                n=n,
            )
            a["device_id"] = f"desk-{subject}"
            a["observation_ref"] = None if n == 3 else refs[subject]
            if kind == "click":
                a["x"], a["y"] = 50, 25
            acts.append(a)
    client.insert("actions", [action_row(a) for a in acts], column_names=ACTION_COLUMNS)

    out = tmp_path / "export"
    result = export_computer_use(
        db_settings,
        datetime.now(UTC) - timedelta(hours=1),
        datetime.now(UTC),
        out,
        store=store,
        keys=load_keyset(client, MASTER),
        client=client,
    )

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    ds = datasets.load_dataset(
        "parquet",
        data_files=[str(p) for p in result.shards],
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    eligible = [s for s, _ in client.query(ELIGIBLE_SQL).result_rows]
    held = client.query(
        "SELECT count() FROM actions FINAL WHERE has({s:Array(String)}, subject_id)",
        parameters={"s": eligible},
    ).result_rows[0][0]
    assert eligible == ["alice"]
    assert len(ds) == held == result.actions == 4
    assert isinstance(ds.features["image"], datasets.Image)
    rows = sorted(ds, key=lambda r: r["step_index"])
    assert rows[3]["image"] is None  # no frame before it
    assert rows[0]["action_code"] == "click(x=0.2500, y=0.2500, button='left')"
    assert (rows[0]["x"], rows[0]["y"]) == (0.25, 0.25)
    image = rows[0]["image"]
    assert image.size == (200, 100) and image.convert("RGB").getpixel((5, 5)) == (200, 10, 10)
    assert rows[1]["action_code"] == "write('hello')"
    assert rows[2]["action_code"] == "hotkey('ctrl', 's')" and rows[2]["keys"] == ["ctrl", "s"]
    assert rows[3]["action_code"] == "scroll(-3)"
    assert {r["device_id"] for r in rows} == {"desk-alice"}

    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"bob" not in everything and refs["bob"].encode()[7:] not in everything
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "num_examples: 4" in card and "| email | 2 |" in card
    whole = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf2"))
    assert len(whole) == 4 and isinstance(whole.features["image"], datasets.Image)
    exported = client.query("SELECT subjects, total_rows FROM exports").result_rows
    assert exported == [(["alice"], 4)]
