-- Answers: which terminal commands run most often and how often they fail.
-- Parameters: {org_id:String}, {day_from:Date}, {day_to:Date} (inclusive), {top:UInt32}.
SELECT command, sum(runs) AS total_runs, sum(failures) AS total_failures,
       round(total_failures / total_runs, 3) AS failure_rate
FROM commands_run
WHERE org_id = {org_id:String} AND day BETWEEN {day_from:Date} AND {day_to:Date}
GROUP BY command
ORDER BY total_runs DESC
LIMIT {top:UInt32}
