"""Versioned ClickHouse migrations: render `sinks/migrations/NNNN_name.sql` and apply them once.

A migration file is a list of statements separated by a ``;`` at the end of a
line, with ``{db}``, ``{on_cluster}`` and retention placeholders (see
`placeholders`). Rendering is pure (`render`); `migrate` applies the versions
missing from ``<db>.schema_migrations`` in order and records each one after
all its statements succeeded. Statements use ``IF NOT EXISTS``, so a run
interrupted half-way is simply repeated.

Cluster variant (``settings.clickhouse.cluster`` set): every statement gets
``ON CLUSTER <name>``; a table whose engine is ``XMergeTree(args)`` is created
as ``<table>_local`` with ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/<table>_local',
'{replica}', args)`` and a ``Distributed`` table ``<table>`` over it, sharded by
the statement's ``-- shard_key: <expr>`` line (``rand()`` otherwise). Queries
and sinks use ``<table>`` either way.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from candor.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER = re.compile(r"\{(db|on_cluster|events_ttl_days|dlq_ttl_hours)\}")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_SHARD_KEY = re.compile(r"^\s*--\s*shard_key:\s*(.+?)\s*$", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^[ \t]*--.*$\n?", re.MULTILINE)
_PLAIN_COMMENT_LINE = re.compile(r"^[ \t]*--(?!\s*shard_key:).*$\n?", re.MULTILINE)
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\S+?)\.(\w+)")
_ENGINE = re.compile(r"^ENGINE = (\w*)MergeTree(?:\((.*)\))?[ \t]*$", re.MULTILINE)

SCHEMA_MIGRATIONS_SQL = """
CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster}
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = MergeTree
ORDER BY version
"""


class MigrationError(RuntimeError):
    """Base of migration failures."""


class MigrationFileError(MigrationError):
    """A file in the migrations directory is misnamed, empty, or a duplicate version."""


class MigrationChanged(MigrationError):
    """An applied migration's file changed since; released migrations are never edited."""

    def __init__(self, version: int, name: str) -> None:
        super().__init__(
            f"migration {version:04d}_{name} was applied with another content; "
            "add a new migration instead of editing a released one"
        )
        self.version = version


@dataclass(frozen=True)
class Migration:
    """One migration file: its version, name, template text and sha256 of the text."""

    version: int
    name: str
    template: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migrations of ``directory`` in version order.

    Raises `MigrationFileError` for a ``.sql`` file not named ``NNNN_name.sql``,
    a duplicate version, or a file without statements.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationFileError(f"{path.name}: expected NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationFileError(f"{path.name}: version {version} is used twice")
        migration = Migration(version, match.group(2), path.read_text())
        if not split_statements(migration.template):
            raise MigrationFileError(f"{path.name}: no statements")
        found[version] = migration
    return [found[v] for v in sorted(found)]


def placeholders(settings: Settings) -> dict[str, str]:
    """The values substituted into migration templates, from ``settings``."""
    ch = settings.clickhouse
    return {
        "db": _identifier(ch.database),
        "on_cluster": f"ON CLUSTER {_identifier(ch.cluster)}" if ch.cluster else "",
        "events_ttl_days": str(int(settings.retention.clickhouse_events_days)),
        "dlq_ttl_hours": str(int(settings.retention.dlq_hours)),
    }


def split_statements(template: str) -> list[str]:
    """Split a migration text into statements; drop comment lines but `-- shard_key:`."""
    parts = _STATEMENT_END.split(_PLAIN_COMMENT_LINE.sub("", template))
    return [p.strip() for p in parts if _COMMENT_LINE.sub("", p).strip()]


def render(template: str, settings: Settings) -> list[str]:
    """Return the SQL statements of ``template`` for ``settings``, ready to run.

    Pure. Only the known placeholders are replaced, so ClickHouse macros such as
    ``{shard}`` survive. Comment lines are removed.
    """
    values = placeholders(settings)
    cluster = settings.clickhouse.cluster
    statements: list[str] = []
    for raw in split_statements(template):
        shard = _SHARD_KEY.search(raw)
        text = _COMMENT_LINE.sub("", raw).strip()
        text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
        text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
        if cluster and _ENGINE.search(text):
            statements.extend(
                _replicated(text, values, _identifier(cluster), shard.group(1) if shard else None)
            )
        else:
            statements.append(text)
    return statements


def _replicated(
    text: str, values: dict[str, str], cluster: str, shard_key: str | None
) -> list[str]:
    """Turn one single-node CREATE TABLE into the local Replicated table + its Distributed table."""
    table = _CREATE_TABLE.search(text)
    if table is None:
        raise MigrationFileError(f"an engine outside CREATE TABLE IF NOT EXISTS: {text[:80]}")
    db, name = table.group(1), table.group(2)
    local = f"{name}_local"
    text = text.replace(table.group(0), f"CREATE TABLE IF NOT EXISTS {db}.{local}", 1)

    def engine(match: re.Match[str]) -> str:
        kind, args = match.group(1), match.group(2)
        replication = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
        full = f"{replication}, {args}" if args else replication
        return f"ENGINE = Replicated{kind}MergeTree({full})"

    text = _ENGINE.sub(engine, text, count=1)
    text = text.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {db}.{name} {values['on_cluster']}\n"
        f"AS {db}.{local}\n"
        f"ENGINE = Distributed({cluster}, {db}, {local}, {shard_key or 'rand()'})"
    )
    return [text, distributed]


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise MigrationError(f"{name!r} is not a plain ClickHouse identifier")
    return name


def plan(settings: Settings, applied: dict[int, str],
         migrations: list[Migration] | None = None) -> list[Migration]:
    """Return the migrations still to apply given ``{version: checksum}`` already applied.

    Pure. Raises `MigrationChanged` when an applied version's file differs.
    """
    pending = []
    for migration in migrations if migrations is not None else load_migrations():
        recorded = applied.get(migration.version)
        if recorded is None:
            pending.append(migration)
        elif recorded != migration.checksum:
            raise MigrationChanged(migration.version, migration.name)
    return pending


def migrate(settings: Settings, client: Client | None = None) -> list[int]:
    """Create the database if needed and apply the pending migrations, in order.

    Returns the versions applied by this call (``[]`` when up to date). Blocks
    on ClickHouse; raises `MigrationChanged`, `MigrationFileError`, or the
    driver's error of the failing statement (the version is then not recorded,
    and the next run repeats it).
    """
    from sinks.connection import connect

    client = client or connect(settings, database="")
    values = placeholders(settings)
    client.command(f"CREATE DATABASE IF NOT EXISTS {values['db']} {values['on_cluster']}")
    for statement in render(SCHEMA_MIGRATIONS_SQL, settings):
        client.command(statement)
    rows = client.query(
        f"SELECT version, argMax(checksum, applied_at) FROM {values['db']}.schema_migrations "
        "GROUP BY version"
    ).result_rows
    applied: dict[int, str] = {int(v): str(c) for v, c in rows}
    done: list[int] = []
    for migration in plan(settings, applied):
        for statement in render(migration.template, settings):
            client.command(statement)
        client.insert(
            f"{values['db']}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done
