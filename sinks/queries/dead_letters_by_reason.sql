-- Answers: what input the pipeline refused since a time, by reason and source topic.
-- Parameters: {since:DateTime64(6)}.
SELECT reason, original_topic, count() AS letters, max(landed_at) AS latest,
       any(substring(error, 1, 120)) AS example_error
FROM dead_letters FINAL
WHERE landed_at >= {since:DateTime64(6)}
GROUP BY reason, original_topic
ORDER BY letters DESC
