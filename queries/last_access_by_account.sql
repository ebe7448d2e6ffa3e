-- Each account's services and when each was last used, from the account reports of the latest snapshot (null = not used in 400 days).
-- An account reported once per SCP (policy_id) has one row per service: the latest use across its reports.
SELECT
    target_id AS account_id,
    max(target_name) AS account_name,
    service_namespace,
    max(service_name) AS service_name,
    max(last_authenticated_time) AS last_authenticated_time,
    max_by(last_authenticated_region, last_authenticated_time) AS last_authenticated_region,
    count(*) AS reports
FROM access_details
WHERE
    dt = (SELECT max(dt) FROM access_details)
    AND target_type = 'ACCOUNT'
GROUP BY target_id, service_namespace
ORDER BY target_id, service_namespace
