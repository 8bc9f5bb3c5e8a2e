-- Analyst views over the tables of 0001. Same names on one node and on a
-- cluster (there they read the Distributed tables).

-- Active time per person, app and day (from the minute aggregates).
CREATE VIEW IF NOT EXISTS {db}.daily_app_time {on_cluster} AS
SELECT
    org_id,
    subject_id,
    toDate(window_start) AS day,
    app,
    sum(seconds) AS active_seconds
FROM {db}.activity_minutes
ARRAY JOIN mapKeys(app_seconds) AS app, mapValues(app_seconds) AS seconds
GROUP BY org_id, subject_id, day, app
;

-- Sessions per person per day, with their active time.
CREATE VIEW IF NOT EXISTS {db}.daily_sessions {on_cluster} AS
SELECT
    org_id,
    subject_id,
    toDate(start_ts) AS day,
    count() AS sessions,
    sum(active_seconds) AS active_seconds,
    sum(keystrokes) AS keystrokes,
    sum(clicks) AS clicks
FROM {db}.sessions FINAL
GROUP BY org_id, subject_id, day
;

-- Focus switches: from which app to which app, per person and day.
CREATE VIEW IF NOT EXISTS {db}.focus_switches {on_cluster} AS
SELECT
    org_id,
    subject_id,
    toDate(ts) AS day,
    coalesce(previous_app_name, '') AS from_app,
    app_name AS to_app,
    count() AS switches
FROM {db}.events
WHERE event_type = 'WindowFocus'
GROUP BY org_id, subject_id, day, from_app, to_app
;

-- Terminal commands run, per person and day (command text only where consented).
CREATE VIEW IF NOT EXISTS {db}.commands_run {on_cluster} AS
SELECT
    org_id,
    subject_id,
    toDate(ts) AS day,
    coalesce(command, '') AS command,
    count() AS runs,
    countIf(exit_code != 0) AS failures
FROM {db}.events
WHERE event_type = 'TerminalCommand'
GROUP BY org_id, subject_id, day, command
;
