""" "Download all my data": one zip of JSON and Parquet with a README.

Layout of the zip::

    README.md                 what each file holds, and how to open it
    summary.json              consent now and its history, days, redactions,
                              exports that held the person, erasure receipts
    tables/<table>.parquet    every row of the person in events, sessions,
                              activity_minutes, actions, consent_ledger
    tables/<table>.jsonl      the same rows as JSON lines

The zip is written to a temporary file (its size is known before the first
byte is sent, so the browser can show progress) and deleted by the caller.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from candor.portal import data
from schemas.extras import MissingExtra

try:
    import pyarrow.parquet as pq
except ModuleNotFoundError as err:  # the core install runs without the export extra
    raise MissingExtra.of(err, "export", "the portal's data download") from err

__all__ = ["README", "build_zip", "json_default"]

README = """# Your data held by Candor

Subject id: `{subject}`, written {written}.

- `summary.json`: your consent now and every change to it (who, when, why),
  your capture hours, your activity per day (events by type, active seconds
  per app, sessions), how many of your events each redaction rule touched,
  the training exports that included you, and your erasure receipts.
- `tables/*.parquet`: every row Candor's ClickHouse holds about you, one file
  per table (`events`, `sessions`, `activity_minutes`, `actions`,
  `consent_ledger`). Open with pandas (`pandas.read_parquet`), DuckDB,
  pyarrow or any Parquet reader.
- `tables/*.jsonl`: the same rows as JSON, one row per line; times are
  ISO 8601 in UTC.

Content fields (typed text, commands, diffs) are present only where you
consented to their scope and no redaction rule removed them.
"""


def json_default(value: object) -> object:
    """JSON for what ClickHouse rows hold: datetimes and dates as ISO 8601,
    bytes as text, sets/tuples as lists. Raises TypeError otherwise."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _summary(client: Client, subject: str, extra: dict[str, Any]) -> dict[str, Any]:
    view = data.overview(client, subject)
    return {
        "subject": subject,
        **extra,
        "consent_history": [asdict(c) for c in data.consent_history(client, subject)],
        "days": [
            {
                "day": d.day,
                "events_by_type": d.events_by_type,
                "active_seconds_per_app": d.app_seconds,
                "sessions": d.sessions,
            }
            for d in view.days
        ],
        "redactions_by_rule": view.redactions,
        "exports_that_included_you": [asdict(e) for e in view.exports],
        "erasure_receipts": data.receipts(client, subject),
    }


def build_zip(
    client: Client,
    subject: str,
    directory: Path,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the subject's zip into ``directory``; return its path.

    ``extra`` (e.g. consent now, capture hours) is merged into
    ``summary.json``. Blocks on ClickHouse and disk; raises the driver's errors.
    """
    fd, name = tempfile.mkstemp(prefix="candor-portal-", suffix=".zip", dir=directory)
    path = Path(name)
    with open(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.md", README.format(subject=subject, written=now.isoformat()))
        summary = _summary(client, subject, extra or {})
        zf.writestr(
            "summary.json", json.dumps(summary, indent=2, default=json_default, sort_keys=True)
        )
        for table in data.PERSONAL_TABLES:
            rows = data.table_rows(client, subject, table)
            buf = io.BytesIO()
            pq.write_table(rows, buf, compression="zstd")
            zf.writestr(f"tables/{table}.parquet", buf.getvalue())
            lines = (
                json.dumps(r, default=json_default, ensure_ascii=False) for r in rows.to_pylist()
            )
            zf.writestr(f"tables/{table}.jsonl", "".join(line + "\n" for line in lines))
    return path
