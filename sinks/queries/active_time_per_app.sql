-- Answers: how much active time each person spent in each app per day.
-- Parameters: {org_id:String}, {day_from:Date}, {day_to:Date} (inclusive).
SELECT day, subject_id, app, round(sum(active_seconds) / 3600, 2) AS active_hours
FROM daily_app_time
WHERE org_id = {org_id:String} AND day BETWEEN {day_from:Date} AND {day_to:Date}
GROUP BY day, subject_id, app
ORDER BY day, subject_id, active_hours DESC
