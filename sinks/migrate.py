"""Versioned ClickHouse migrations: render `sinks/migrations/NNNN_name.sql` and apply them once.

A migration file is a list of statements separated by a ``;`` at the end of a
line, with ``{db}``, ``{on_cluster}``, ``{local}`` and retention placeholders (see
`placeholders`). Rendering is pure (`render`); `migrate` applies the versions
missing from ``<db>.schema_migrations`` in order and records each one after
all its statements succeeded. Statements use ``IF NOT EXISTS``, so a run
interrupted half-way is simply repeated.

Cluster variant (``settings.clickhouse.cluster`` set): every statement gets
``ON CLUSTER <name>``; a table whose engine is ``XMergeTree(args)`` is created
as ``<table>_local`` with ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/<table>_local',
'{replica}', args)`` and a ``Distributed`` table ``<table>`` over it, sharded by
the statement's ``-- shard_key: <expr>`` line (otherwise ``cityHash64`` of its
sorting key, so rows a ReplacingMergeTree collapses meet on one shard, and
``rand()`` for a table without one). Queries and sinks use ``<table>`` either way.

Two switches for clusters without ZooKeeper/Keeper (the chdb engine of the
local stack, or shards of one replica each): ``clickhouse.replicated = False``
keeps each table's own engine (and its ``non_replicated_deduplication_window``)
for ``<table>_local``; ``clickhouse.shard_urls`` makes `migrate` apply every
statement to each listed server, without ``ON CLUSTER`` (no distributed DDL).

Exactly-once through ``Distributed``: with ``distributed_foreground_insert = 1``
an insert's ``insert_deduplication_token`` reaches each shard with that shard's
rows, so a replayed batch is dropped shard by shard, also after an insert that
failed with a shard down (rows a shard took keep their token). That holds only
when a replay sends the same rows to the same shard: a table the sinks insert
into needs a deterministic ``-- shard_key:`` (``rand()`` would route a replay's
rows elsewhere).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from sinks.settings import SinkSettings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER = re.compile(r"\{(db|on_cluster|local|events_ttl_days|dlq_ttl_hours)\}")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_SHARD_KEY = re.compile(r"^\s*--\s*shard_key:\s*(.+?)\s*$", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^[ \t]*--.*$\n?", re.MULTILINE)
_PLAIN_COMMENT_LINE = re.compile(r"^[ \t]*--(?!\s*shard_key:).*$\n?", re.MULTILINE)
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\S+?)\.(\w+)")
_ORDER_BY = re.compile(r"^ORDER BY (?:\((.+)\)|(\w+))[ \t]*$", re.MULTILINE)
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


def placeholders(settings: SinkSettings) -> dict[str, str]:
    """The values substituted into migration templates, from ``settings``."""
    ch = settings.clickhouse
    on_cluster = f"ON CLUSTER {_identifier(ch.cluster)}" if ch.cluster and not ch.shard_urls else ""
    return {
        "db": _identifier(ch.database),
        "on_cluster": on_cluster,
        # the suffix of the table holding the rows: "_local" under a cluster's
        # Distributed table (an ALTER of the sorting key goes there), else ""
        "local": "_local" if ch.cluster else "",
        "events_ttl_days": str(int(settings.retention.clickhouse_events_days)),
        "dlq_ttl_hours": str(int(settings.retention.dlq_hours)),
    }


def split_statements(template: str) -> list[str]:
    """Split a migration text into statements; drop comment lines but `-- shard_key:`."""
    parts = _STATEMENT_END.split(_PLAIN_COMMENT_LINE.sub("", template))
    return [p.strip() for p in parts if _COMMENT_LINE.sub("", p).strip()]


def render(template: str, settings: SinkSettings) -> list[str]:
    """Return the SQL statements of ``template`` for ``settings``, ready to run.

    Pure. Only the known placeholders are replaced, so ClickHouse macros such as
    ``{shard}`` survive. Comment lines are removed.
    """
    return [statement for statement, _ in render_steps(template, settings)]


def render_steps(template: str, settings: SinkSettings) -> list[tuple[str, bool]]:
    """`render`'s statements, each with whether it belongs on every server of the cluster.

    Pure. A statement whose template says ``{on_cluster}`` (DDL) belongs on every
    server; one without (an ``INSERT ... SELECT`` backfill through Distributed
    tables) runs once. With ``ON CLUSTER`` rendered, the server distributes the
    former itself; with ``clickhouse.shard_urls``, `migrate` does.
    """
    values = placeholders(settings)
    cluster = settings.clickhouse.cluster
    steps: list[tuple[str, bool]] = []
    for raw in split_statements(template):
        everywhere = "{on_cluster}" in raw
        shard = _SHARD_KEY.search(raw)
        text = _COMMENT_LINE.sub("", raw).strip()
        text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
        text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
        if cluster and _ENGINE.search(text):
            sharded = _sharded(
                text,
                values,
                _identifier(cluster),
                shard.group(1) if shard else None,
                settings.clickhouse.replicated,
            )
            steps.extend((statement, True) for statement in sharded)
        else:
            steps.append((text, everywhere))
    return steps


def _sharded(
    text: str, values: dict[str, str], cluster: str, shard_key: str | None, replicated: bool
) -> list[str]:
    """Turn one single-node CREATE TABLE into its shard-local table (Replicated engine when
    ``replicated``, else the statement's own) + the Distributed table under the original name."""
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

    if replicated:
        text = _ENGINE.sub(engine, text, count=1)
        text = text.replace(
            "non_replicated_deduplication_window", "replicated_deduplication_window"
        )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {db}.{name} {values['on_cluster']}\n"
        f"AS {db}.{local}\n"
        f"ENGINE = Distributed({cluster}, {db}, {local}, {shard_key or _default_key(text)})"
    )
    return [text, distributed]


def _default_key(text: str) -> str:
    """``cityHash64`` of the statement's sorting key: deterministic, so a replayed row
    reaches the shard that holds its first copy; ``rand()`` without a sorting key."""
    order = _ORDER_BY.search(text)
    if order is None:
        return "rand()"
    return f"cityHash64({order.group(1) or order.group(2)})"


def _server(settings: SinkSettings, url: str) -> Client:
    """A client of one more server of the cluster, same user and database as ``settings``."""
    from backends.clickhouse.connection import connect

    return connect(settings.clickhouse.model_copy(update={"url": url}, deep=True), database="")


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise MigrationError(f"{name!r} is not a plain ClickHouse identifier")
    return name


def plan(
    settings: SinkSettings, applied: dict[int, str], migrations: list[Migration] | None = None
) -> list[Migration]:
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


def migrate(settings: SinkSettings, client: Client | None = None) -> list[int]:
    """Create the database if needed and apply the pending migrations, in order.

    With ``clickhouse.shard_urls`` set, each DDL statement runs on every one of
    those servers (and on ``client``'s) before the next statement starts, other
    statements once (`render_steps`), and a version is recorded once all of
    them took it. Returns the versions applied by this call (``[]`` when up to
    date). Blocks on ClickHouse; raises `MigrationChanged`, `MigrationFileError`, or the
    driver's error of the failing statement (the version is then not recorded,
    and the next run repeats it).
    """
    from backends.clickhouse.connection import connect

    client = client or connect(settings, database="")
    servers = [
        client,
        *(
            _server(settings, url)
            for url in settings.clickhouse.shard_urls
            if url.rstrip("/") != settings.clickhouse.url.rstrip("/")
        ),
    ]
    values = placeholders(settings)
    for server in servers:
        server.command(f"CREATE DATABASE IF NOT EXISTS {values['db']} {values['on_cluster']}")
    for statement in render(SCHEMA_MIGRATIONS_SQL, settings):
        for server in servers:
            server.command(statement)
    rows = client.query(
        f"SELECT version, argMax(checksum, applied_at) FROM {values['db']}.schema_migrations "
        "GROUP BY version"
    ).result_rows
    applied: dict[int, str] = {int(v): str(c) for v, c in rows}
    done: list[int] = []
    for migration in plan(settings, applied):
        # statement by statement across the servers, as ON CLUSTER would: a later
        # statement may read an earlier one's tables on every shard
        for statement, everywhere in render_steps(migration.template, settings):
            for server in servers if everywhere else servers[:1]:
                server.command(statement)
        client.insert(
            f"{values['db']}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done
