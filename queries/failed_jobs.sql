-- Report jobs of the latest run day that did not complete (FAILED, TIMED_OUT, NOT_STARTED, INCOMPLETE, NOT_COLLECTED): their targets' data is missing or carried forward from an earlier report.
-- DEFERRED (left to a later run by the collection plan) is not a failure; data_age_days on COMPLETED rows says how old each target's data is.
SELECT
    target_path,
    target_type,
    target_id,
    target_name,
    policy_id,
    job_id,
    job_status,
    error_code,
    error_message,
    dt
FROM report_jobs
WHERE
    dt = (SELECT max(dt) FROM report_jobs)
    AND job_status NOT IN ('COMPLETED', 'DEFERRED')
ORDER BY target_path, coalesce(policy_id, '')
