-- Events that arrived after a higher seq of their device (a capture client that
-- sent out of order). The stream worker passes them on and marks them with
-- "seq_regression" in the redaction trail; this view lists them, the worker's
-- candor_worker_seq_regressions_total{device_id} counts them.
CREATE VIEW IF NOT EXISTS {db}.seq_regressions {on_cluster} AS
SELECT
    org_id,
    subject_id,
    device_id,
    seq,
    ts,
    received_ts,
    event_id,
    event_type
FROM {db}.events FINAL
WHERE has(redactions, 'seq_regression')
;
