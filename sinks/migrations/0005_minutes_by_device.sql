-- Minute aggregates that a replay replaces instead of adding.
--
-- 0001 kept activity_minutes as a SummingMergeTree keyed by (org, subject,
-- minute): a minute the worker emitted again after a crash (killed between its
-- output flush and its changelog write) arrived at a new offset with a new
-- insert token and was added a second time. Rows now land per device in a
-- ReplacingMergeTree keyed by (org, subject, minute, device): the same minute
-- of the same device replaces itself. activity_minutes becomes a view that
-- sums a subject's devices per minute, so every query, analyst view and export
-- reads the same name and columns as before.

CREATE TABLE IF NOT EXISTS {db}.activity_minutes_by_device {on_cluster}
(
    org_id LowCardinality(String),
    subject_id String,
    device_id String,
    window_start DateTime64(6, 'UTC'),
    keys UInt64,
    clicks UInt64,
    scrolls UInt64,
    mouse_distance_px Float64,
    active_seconds Float64,
    app_seconds Map(String, Float64),
    events UInt64,
    landed_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (org_id, subject_id, window_start, device_id)
TTL toDateTime(window_start) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
-- shard_key: cityHash64(subject_id)
;

-- The rows 0001's table holds, one per (org, subject, minute), with the device
-- unknown (''). Copied only while activity_minutes is still that table (its
-- engine is not View), so a repeated run copies nothing twice; a repeated copy
-- would replace itself anyway (same key).
INSERT INTO {db}.activity_minutes_by_device
    (org_id, subject_id, device_id, window_start, keys, clicks, scrolls,
     mouse_distance_px, active_seconds, app_seconds, events)
SELECT org_id, subject_id, '', window_start, sum(keys), sum(clicks), sum(scrolls),
       sum(mouse_distance_px), sum(active_seconds), sumMap(app_seconds), sum(events)
FROM {db}.activity_minutes
WHERE (SELECT count() FROM system.tables
       WHERE database = '{db}' AND name = 'activity_minutes' AND engine != 'View') = 1
GROUP BY org_id, subject_id, window_start
;

-- Dropped rather than kept aside: personal data that erasure no longer reaches
-- must not stay behind. Its rows are in activity_minutes_by_device.
DROP TABLE IF EXISTS {db}.activity_minutes {on_cluster} SYNC
;

DROP TABLE IF EXISTS {db}.activity_minutes_local {on_cluster} SYNC
;

CREATE VIEW IF NOT EXISTS {db}.activity_minutes {on_cluster}
SQL SECURITY DEFINER AS
SELECT
    org_id,
    subject_id,
    window_start,
    sum(keys) AS keys,
    sum(clicks) AS clicks,
    sum(scrolls) AS scrolls,
    sum(mouse_distance_px) AS mouse_distance_px,
    sum(active_seconds) AS active_seconds,
    sumMap(app_seconds) AS app_seconds,
    sum(events) AS events
FROM {db}.activity_minutes_by_device FINAL
GROUP BY org_id, subject_id, window_start
;
