-- Analyst views that one person's change cannot be read from (issue 14, item 3).
--
-- 0004's views were exact: reading a team total before and after one person
-- revoked `analytics` (or was erased) gave that person's exact total. Each
-- total is now released with calibrated Laplace noise:
--
--   * contribution bound: one person's share of one row is clipped (per person
--     and day, before summing) at B, listed per column below;
--   * noise: Laplace with scale b = B / epsilon, epsilon = 1 per column and
--     per release (privacy/README.md, "Analyst views: differencing");
--   * sticky: the noise is a pure function of a secret seed (the table
--     analyst_noise_seed, readable by the views' definer, never by analysts),
--     the view, the group (org, day, app ...), the column, the set of people
--     counted and the true value. Reading the same data again returns the
--     same numbers, so repeated reads cannot average the noise away; any change
--     of the data draws fresh noise, so a before/after difference is the true
--     difference plus the difference of two independent Laplace draws.
--   * `people` stays exact (it says how many were counted, not what they did);
--     groups under 5 people stay hidden. Totals are rounded, and not clipped
--     at zero: a small group's total may be negative, so that sums over many
--     groups stay unbiased.
--
-- Bounds B (per person, per day, per row): active seconds 28800 (8 h), keys
-- 20000, clicks 5000, scrolls 5000, events 100000, sessions 20, focus
-- switches 200 per (from, to) pair.

CREATE TABLE IF NOT EXISTS {db}.analyst_noise_seed {on_cluster}
(
    seed String,
    created_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = MergeTree
ORDER BY created_at
;

-- One random seed, drawn once (a repeated run adds none; the views read the oldest).
INSERT INTO {db}.analyst_noise_seed (seed)
SELECT hex(randomString(32))
WHERE (SELECT count() FROM {db}.analyst_noise_seed) = 0
;

-- Active time and input volume per org and day.
CREATE OR REPLACE VIEW analyst_{db}.team_daily_activity {on_cluster}
SQL SECURITY DEFINER AS
WITH (SELECT argMin(seed, created_at) FROM {db}.analyst_noise_seed) AS noise_seed
SELECT
    org_id, day,
    people,
    round(active_seconds_c - 28800 * sign((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'active_seconds', members, active_seconds_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'active_seconds', members, active_seconds_c) + 0.5) / 18446744073709551616 - 0.5)), 1) AS active_seconds,
    toInt64(round(keys_c - 20000 * sign((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'keys', members, keys_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'keys', members, keys_c) + 0.5) / 18446744073709551616 - 0.5)))) AS keys,
    toInt64(round(clicks_c - 5000 * sign((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'clicks', members, clicks_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'clicks', members, clicks_c) + 0.5) / 18446744073709551616 - 0.5)))) AS clicks,
    toInt64(round(scrolls_c - 5000 * sign((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'scrolls', members, scrolls_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'scrolls', members, scrolls_c) + 0.5) / 18446744073709551616 - 0.5)))) AS scrolls,
    toInt64(round(events_c - 100000 * sign((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'events', members, events_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_activity', org_id, day, 'events', members, events_c) + 0.5) / 18446744073709551616 - 0.5)))) AS events
FROM (
    SELECT
        org_id, day,
        count() AS people,
        cityHash64(arraySort(groupArray(subject_id))) AS members,
        sum(active_seconds_p) AS active_seconds_c,
        sum(keys_p) AS keys_c,
        sum(clicks_p) AS clicks_c,
        sum(scrolls_p) AS scrolls_c,
        sum(events_p) AS events_c
    FROM (
        SELECT
            org_id,
            toDate(window_start) AS day,
            subject_id,
            least(sum(active_seconds), 28800) AS active_seconds_p,
            least(sum(keys), 20000) AS keys_p,
            least(sum(clicks), 5000) AS clicks_p,
            least(sum(scrolls), 5000) AS scrolls_p,
            least(sum(events), 100000) AS events_p
        FROM {db}.activity_minutes
        WHERE subject_id IN (
                SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
                HAVING has(argMax(scopes, version), 'analytics'))
          AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
        GROUP BY org_id, day, subject_id
    )
    GROUP BY org_id, day
    HAVING people >= 5
)
;

-- Active time per org, day and application.
CREATE OR REPLACE VIEW analyst_{db}.team_daily_app_time {on_cluster}
SQL SECURITY DEFINER AS
WITH (SELECT argMin(seed, created_at) FROM {db}.analyst_noise_seed) AS noise_seed
SELECT
    org_id, day, app,
    people,
    round(active_seconds_c - 28800 * sign((cityHash64(noise_seed, 'team_daily_app_time', org_id, day, app, 'active_seconds', members, active_seconds_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_app_time', org_id, day, app, 'active_seconds', members, active_seconds_c) + 0.5) / 18446744073709551616 - 0.5)), 1) AS active_seconds
FROM (
    SELECT
        org_id, day, app,
        count() AS people,
        cityHash64(arraySort(groupArray(subject_id))) AS members,
        sum(active_seconds_p) AS active_seconds_c
    FROM (
        SELECT
            org_id,
            toDate(window_start) AS day,
            app,
            subject_id,
            least(sum(seconds), 28800) AS active_seconds_p
        FROM {db}.activity_minutes
        ARRAY JOIN mapKeys(app_seconds) AS app, mapValues(app_seconds) AS seconds
        WHERE subject_id IN (
                SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
                HAVING has(argMax(scopes, version), 'analytics'))
          AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
        GROUP BY org_id, day, app, subject_id
    )
    GROUP BY org_id, day, app
    HAVING people >= 5
)
;

-- Work sessions per org and day.
CREATE OR REPLACE VIEW analyst_{db}.team_daily_sessions {on_cluster}
SQL SECURITY DEFINER AS
WITH (SELECT argMin(seed, created_at) FROM {db}.analyst_noise_seed) AS noise_seed
SELECT
    org_id, day,
    people,
    toInt64(round(sessions_c - 20 * sign((cityHash64(noise_seed, 'team_daily_sessions', org_id, day, 'sessions', members, sessions_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_sessions', org_id, day, 'sessions', members, sessions_c) + 0.5) / 18446744073709551616 - 0.5)))) AS sessions,
    round(session_active_seconds_c - 28800 * sign((cityHash64(noise_seed, 'team_daily_sessions', org_id, day, 'session_active_seconds', members, session_active_seconds_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_daily_sessions', org_id, day, 'session_active_seconds', members, session_active_seconds_c) + 0.5) / 18446744073709551616 - 0.5)), 1) AS session_active_seconds,
    round(session_active_seconds / greatest(1, sessions), 1) AS avg_session_active_seconds
FROM (
    SELECT
        org_id, day,
        count() AS people,
        cityHash64(arraySort(groupArray(subject_id))) AS members,
        sum(sessions_p) AS sessions_c,
        sum(session_active_seconds_p) AS session_active_seconds_c
    FROM (
        SELECT
            org_id,
            toDate(start_ts) AS day,
            subject_id,
            least(count(), 20) AS sessions_p,
            least(sum(s.active_seconds), 28800) AS session_active_seconds_p
        FROM {db}.sessions AS s FINAL
        WHERE subject_id IN (
                SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
                HAVING has(argMax(scopes, version), 'analytics'))
          AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
        GROUP BY org_id, day, subject_id
    )
    GROUP BY org_id, day
    HAVING people >= 5
)
;

-- Focus switches between applications per org and day.
CREATE OR REPLACE VIEW analyst_{db}.team_focus_switches {on_cluster}
SQL SECURITY DEFINER AS
WITH (SELECT argMin(seed, created_at) FROM {db}.analyst_noise_seed) AS noise_seed
SELECT
    org_id, day, from_app, to_app,
    people,
    toInt64(round(switches_c - 200 * sign((cityHash64(noise_seed, 'team_focus_switches', org_id, day, from_app, to_app, 'switches', members, switches_c) + 0.5) / 18446744073709551616 - 0.5) * ln(1 - 2 * abs((cityHash64(noise_seed, 'team_focus_switches', org_id, day, from_app, to_app, 'switches', members, switches_c) + 0.5) / 18446744073709551616 - 0.5)))) AS switches
FROM (
    SELECT
        org_id, day, from_app, to_app,
        count() AS people,
        cityHash64(arraySort(groupArray(subject_id))) AS members,
        sum(switches_p) AS switches_c
    FROM (
        SELECT
            org_id,
            toDate(ts) AS day,
            coalesce(previous_app_name, '') AS from_app,
            app_name AS to_app,
            subject_id,
            least(count(), 200) AS switches_p
        FROM {db}.events
        WHERE event_type = 'WindowFocus'
          AND subject_id IN (
                SELECT subject_id FROM {db}.consent_ledger GROUP BY subject_id
                HAVING has(argMax(scopes, version), 'analytics'))
          AND subject_id NOT IN (SELECT subject FROM {db}.audit_log WHERE action = 'erase')
        GROUP BY org_id, day, from_app, to_app, subject_id
    )
    GROUP BY org_id, day, from_app, to_app
    HAVING people >= 5
)
;
