-- What analysts may read: team-level views in their own database analyst_{db}.
-- The role candor_analyst gets SELECT on analyst_{db}.* and nothing else
-- (`candor analyst-access`, or the local server's config): no raw table, no
-- content, no key store. The views run with the rights of their definer
-- (SQL SECURITY DEFINER), so the analyst needs no grant on the tables they read.
--
-- Who is counted: only subjects whose current consent holds `analytics` and who
-- were not erased. k-anonymity: a row exists only for a group of at least 5
-- distinct people (HAVING people >= 5); no view has a per-person row, and none
-- names a subject.
CREATE DATABASE IF NOT EXISTS analyst_{db} {on_cluster}
;

-- Active time and input volume per org and day.
CREATE VIEW IF NOT EXISTS analyst_{db}.team_daily_activity {on_cluster}
SQL SECURITY DEFINER AS
SELECT
    org_id,
    toDate(window_start) AS day,
    uniqExact(subject_id) AS people,
    sum(active_seconds) AS active_seconds,
    sum(keys) AS keys,
    sum(clicks) AS clicks,
    sum(scrolls) AS scrolls,
    sum(events) AS events
FROM {db}.activity_minutes
WHERE subject_id IN (
        SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
        HAVING has(argMax(scopes, version), 'analytics'))
  AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
GROUP BY org_id, day
HAVING people >= 5
;

-- Active time per org, day and application.
CREATE VIEW IF NOT EXISTS analyst_{db}.team_daily_app_time {on_cluster}
SQL SECURITY DEFINER AS
SELECT
    org_id,
    toDate(window_start) AS day,
    app,
    uniqExact(subject_id) AS people,
    sum(seconds) AS active_seconds
FROM {db}.activity_minutes
ARRAY JOIN mapKeys(app_seconds) AS app, mapValues(app_seconds) AS seconds
WHERE subject_id IN (
        SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
        HAVING has(argMax(scopes, version), 'analytics'))
  AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
GROUP BY org_id, day, app
HAVING people >= 5
;

-- Work sessions per org and day.
CREATE VIEW IF NOT EXISTS analyst_{db}.team_daily_sessions {on_cluster}
SQL SECURITY DEFINER AS
SELECT
    org_id,
    toDate(start_ts) AS day,
    uniqExact(subject_id) AS people,
    count() AS sessions,
    sum(s.active_seconds) AS session_active_seconds,
    avg(s.active_seconds) AS avg_session_active_seconds
FROM {db}.sessions AS s FINAL
WHERE subject_id IN (
        SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
        HAVING has(argMax(scopes, version), 'analytics'))
  AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
GROUP BY org_id, day
HAVING people >= 5
;

-- Focus switches between applications per org and day.
CREATE VIEW IF NOT EXISTS analyst_{db}.team_focus_switches {on_cluster}
SQL SECURITY DEFINER AS
SELECT
    org_id,
    toDate(ts) AS day,
    coalesce(previous_app_name, '') AS from_app,
    app_name AS to_app,
    uniqExact(subject_id) AS people,
    count() AS switches
FROM {db}.events
WHERE event_type = 'WindowFocus'
  AND subject_id IN (
        SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
        HAVING has(argMax(scopes, version), 'analytics'))
  AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
GROUP BY org_id, day, from_app, to_app
HAVING people >= 5
;
