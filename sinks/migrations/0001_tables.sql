-- Candor's ClickHouse tables. Rendered by sinks/migrate.py:
--   {db}                 database from settings.clickhouse.database
--   {on_cluster}         "" or "ON CLUSTER <settings.clickhouse.cluster>"
--   {events_ttl_days}    settings.retention.clickhouse_events_days
--   {dlq_ttl_hours}      settings.retention.dlq_hours
-- With a cluster configured each *MergeTree table becomes <name>_local with a
-- Replicated engine plus a Distributed table <name> (sharded by the
-- "-- shard_key:" line, rand() otherwise); queries always use <name>.
-- Tables the sinks insert into keep a deduplication window, so a batch replayed
-- with the same insert_deduplication_token after a crash is dropped.

CREATE TABLE IF NOT EXISTS {db}.events {on_cluster}
(
    event_id String,
    org_id LowCardinality(String),
    subject_id String,
    device_id String,
    seq UInt64,
    ts DateTime64(6, 'UTC'),
    received_ts Nullable(DateTime64(6, 'UTC')),
    event_type LowCardinality(String),
    app_name LowCardinality(String),
    window_title Nullable(String),
    url_host Nullable(String),
    key_name Nullable(String),
    text Nullable(String),
    modifiers Array(LowCardinality(String)),
    keys_count UInt32,
    button LowCardinality(Nullable(String)),
    x Nullable(Int32),
    y Nullable(Int32),
    dx Nullable(Int32),
    dy Nullable(Int32),
    mouse_points UInt32,
    mouse_distance_px Float64,
    previous_app_name Nullable(String),
    frame_ref Nullable(String),
    language LowCardinality(Nullable(String)),
    chars_inserted Nullable(UInt32),
    chars_deleted Nullable(UInt32),
    diff Nullable(String),
    command Nullable(String),
    exit_code Nullable(Int32),
    activity_state LowCardinality(Nullable(String)),
    payload_json String,
    redactions Array(LowCardinality(String)),
    consent_version Nullable(UInt64),
    client_version LowCardinality(Nullable(String)),
    landed_at DateTime64(6, 'UTC') DEFAULT now64(6),
    -- A device clock before 2000 is broken; such rows go to the dead letters
    -- instead of creating one partition per bogus day.
    CONSTRAINT ts_after_2000 CHECK ts >= toDateTime64('2000-01-01 00:00:00', 6, 'UTC')
)
-- Replacing on the full sort key, which ends in event_id: the dedup token
-- drops a replayed sink batch, and an event a stream worker re-published after
-- a crash (same event_id, same ts) collapses on merge; exact counts read FINAL
-- or uniqExact(event_id).
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (org_id, subject_id, ts, event_id)
TTL toDateTime(ts) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
-- shard_key: cityHash64(subject_id)
;

-- A session can be emitted again (timer close, then extended): the row with the
-- latest end_ts wins on merge; read with FINAL or argMax.
CREATE TABLE IF NOT EXISTS {db}.sessions {on_cluster}
(
    session_id String,
    org_id LowCardinality(String),
    subject_id String,
    device_id String,
    start_ts DateTime64(6, 'UTC'),
    end_ts DateTime64(6, 'UTC'),
    end_reason LowCardinality(String),
    active_seconds Float64,
    event_counts Map(LowCardinality(String), UInt64),
    app_seconds Map(String, Float64),
    keystrokes UInt64,
    clicks UInt64,
    scrolls UInt64,
    mouse_distance_px Float64,
    commands_run UInt64,
    event_ids_count UInt64,
    landed_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(end_ts)
PARTITION BY toYYYYMM(start_ts)
ORDER BY (org_id, subject_id, session_id)
TTL toDateTime(start_ts) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
-- shard_key: cityHash64(subject_id)
;

-- SummingMergeTree, not AggregatingMergeTree: every measure of a minute is a
-- plain sum, so plain columns suffice, analysts read them without -State/-Merge
-- combinators, and parts collapse to one row per (org, subject, minute).
-- SummingMergeTree does not sum a plain Map column (it keeps one row's map), so
-- app_seconds is SimpleAggregateFunction(sumMap, ...): merged per key, and it
-- still reads as an ordinary Map. Merges are eventual: always read with sum()
-- and sumMap(app_seconds). The stream emits each window once; a sink replay is
-- dropped by the dedup token, so nothing is counted twice by the sink.
CREATE TABLE IF NOT EXISTS {db}.activity_minutes {on_cluster}
(
    org_id LowCardinality(String),
    subject_id String,
    window_start DateTime64(6, 'UTC'),
    keys UInt64,
    clicks UInt64,
    scrolls UInt64,
    mouse_distance_px Float64,
    active_seconds Float64,
    app_seconds SimpleAggregateFunction(sumMap, Map(String, Float64)),
    events UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (org_id, subject_id, window_start)
TTL toDateTime(window_start) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
-- shard_key: cityHash64(subject_id)
;

-- action_id is deterministic, so a re-emitted action replaces itself.
CREATE TABLE IF NOT EXISTS {db}.actions {on_cluster}
(
    action_id String,
    org_id LowCardinality(String),
    subject_id String,
    device_id String,
    session_hint Nullable(String),
    kind LowCardinality(String),
    start_ts DateTime64(6, 'UTC'),
    end_ts DateTime64(6, 'UTC'),
    text Nullable(String),
    chord Nullable(String),
    button LowCardinality(Nullable(String)),
    x Nullable(Int32),
    y Nullable(Int32),
    path Array(Tuple(dt_ms Int32, x Int32, y Int32)),
    dx Int32,
    dy Int32,
    command Nullable(String),
    app_name LowCardinality(String),
    window_title Nullable(String),
    observation_ref Nullable(String),
    event_count UInt64,
    redactions Array(LowCardinality(String)),
    landed_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(start_ts)
ORDER BY (org_id, subject_id, start_ts, action_id)
TTL toDateTime(start_ts) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
-- shard_key: cityHash64(subject_id)
;

-- One row per dead letter; a DLQ message produced twice (replay after a crash)
-- has the same original coordinates and is replaced on merge.
CREATE TABLE IF NOT EXISTS {db}.dead_letters {on_cluster}
(
    reason LowCardinality(String),
    error String,
    original_topic LowCardinality(String),
    original_partition Int32,
    original_offset Int64,
    dlq_topic LowCardinality(String),
    dlq_partition Int32,
    dlq_offset Int64,
    headers Map(String, String),
    raw String,
    landed_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY (original_topic, original_partition, original_offset, reason)
TTL toDateTime(landed_at) + INTERVAL {dlq_ttl_hours} HOUR
SETTINGS non_replicated_deduplication_window = 1000
;

-- Every consent version ever applied: the evidence, kept without TTL.
CREATE TABLE IF NOT EXISTS {db}.consent_ledger {on_cluster}
(
    subject_id String,
    org_id LowCardinality(String),
    version UInt64,
    scopes Array(LowCardinality(String)),
    changed_by String,
    changed_at DateTime64(6, 'UTC'),
    reason Nullable(String),
    landed_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY (org_id, subject_id, version)
SETTINGS non_replicated_deduplication_window = 1000
-- shard_key: cityHash64(subject_id)
;

-- Training exports; the subject list lives here, never in the manifest.
CREATE TABLE IF NOT EXISTS {db}.exports {on_cluster}
(
    export_id String,
    created_at DateTime64(6, 'UTC'),
    range_start DateTime64(6, 'UTC'),
    range_end DateTime64(6, 'UTC'),
    format LowCardinality(String),
    subjects Array(String),
    consent_versions Array(UInt64),
    shard_paths Array(String),
    row_counts Map(String, UInt64),
    total_rows UInt64,
    manifest_sha256 String
)
ENGINE = MergeTree
ORDER BY (created_at, export_id)
;

-- Append-only record of who did what to whose data (erase, export, ...).
CREATE TABLE IF NOT EXISTS {db}.audit_log {on_cluster}
(
    at DateTime64(6, 'UTC') DEFAULT now64(6),
    actor String,
    action LowCardinality(String),
    subject String,
    detail String
)
ENGINE = MergeTree
ORDER BY (action, subject, at)
;
