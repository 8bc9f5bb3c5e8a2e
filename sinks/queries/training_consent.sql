-- Answers: who currently consents to training use (latest consent version per person).
-- Parameters: {org_id:String}.
SELECT subject_id, max(version) AS current_version, argMax(scopes, version) AS current_scopes,
       has(argMax(scopes, version), 'training_use') AS training_use
FROM consent_ledger
WHERE org_id = {org_id:String}
GROUP BY subject_id
ORDER BY subject_id
