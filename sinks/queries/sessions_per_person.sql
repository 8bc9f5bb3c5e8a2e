-- Answers: how many work sessions each person had per day, and how long they were active.
-- Parameters: {org_id:String}, {day_from:Date}, {day_to:Date} (inclusive).
SELECT day, subject_id, sum(sessions) AS sessions,
       round(sum(active_seconds) / 3600, 2) AS active_hours
FROM daily_sessions
WHERE org_id = {org_id:String} AND day BETWEEN {day_from:Date} AND {day_to:Date}
GROUP BY day, subject_id
ORDER BY day, subject_id
