-- Services allowed but unused for more than 90 days in each organizational unit, latest snapshot, with the OU's count of such services.
-- N = 90: edit the INTERVAL literal. Never-used services (null last_authenticated_time) count as unused.
SELECT
    target_path,
    target_id,
    target_name,
    policy_id,
    count(*) OVER (PARTITION BY target_path, coalesce(policy_id, '')) AS unused_in_ou,
    service_namespace,
    service_name,
    last_authenticated_time,
    dt
FROM access_details
WHERE
    dt = (SELECT max(dt) FROM access_details)
    AND target_type = 'ORGANIZATIONAL_UNIT'
    AND (
        last_authenticated_time IS NULL
        OR last_authenticated_time < collected_at - INTERVAL '90' DAY
    )
ORDER BY target_path, coalesce(policy_id, ''), service_namespace
