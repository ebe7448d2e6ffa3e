-- Report jobs of the latest run day that did not complete (FAILED, TIMED_OUT, NOT_STARTED, INCOMPLETE, NOT_COLLECTED): their targets' data is missing or stale.
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
    AND job_status <> 'COMPLETED'
ORDER BY target_path, coalesce(policy_id, '')
