-- Services the SCPs allow but nobody used, per target, in the latest snapshot: never used in IAM's 400-day tracking period, or last used more than 90 days before the snapshot.
-- Edit '90' to change the window. A target is a report: its path, and the SCP it was narrowed to (policy_id, null = all SCPs).
SELECT
    target_path,
    target_type,
    target_id,
    target_name,
    policy_id,
    service_namespace,
    service_name,
    last_authenticated_time,
    dt
FROM access_details
WHERE
    dt = (SELECT max(dt) FROM access_details)
    AND (
        last_authenticated_time IS NULL
        OR last_authenticated_time < collected_at - INTERVAL '90' DAY
    )
ORDER BY target_path, coalesce(policy_id, ''), service_namespace
