-- Answers: which app-to-app focus switches are most frequent (context switching).
-- Parameters: {org_id:String}, {day_from:Date}, {day_to:Date} (inclusive), {top:UInt32}.
SELECT from_app, to_app, sum(switches) AS switches, uniqExact(subject_id) AS people
FROM focus_switches
WHERE org_id = {org_id:String} AND day BETWEEN {day_from:Date} AND {day_to:Date}
GROUP BY from_app, to_app
ORDER BY switches DESC
LIMIT {top:UInt32}
