-- Services unused (90 days) in the latest snapshot that were in use in the previous snapshot, per target: what went quiet since the last run.
-- Each snapshot is judged against its own collected_at. Targets match on target_path and policy_id (null = all SCPs).
WITH
latest_day AS (
    SELECT max(dt) AS dt FROM access_details
),
previous_day AS (
    SELECT max(dt) AS dt FROM access_details WHERE dt < (SELECT dt FROM latest_day)
),
unused_now AS (
    SELECT
        target_path,
        target_type,
        target_id,
        target_name,
        policy_id,
        service_namespace,
        service_name,
        last_authenticated_time
    FROM access_details
    WHERE
        dt = (SELECT dt FROM latest_day)
        AND (
            last_authenticated_time IS NULL
            OR last_authenticated_time < collected_at - INTERVAL '90' DAY
        )
),
used_before AS (
    SELECT
        target_path,
        coalesce(policy_id, '') AS policy_key,
        service_namespace,
        max(last_authenticated_time) AS previous_last_authenticated_time
    FROM access_details
    WHERE
        dt = (SELECT dt FROM previous_day)
        AND last_authenticated_time >= collected_at - INTERVAL '90' DAY
    GROUP BY target_path, coalesce(policy_id, ''), service_namespace
)
SELECT
    n.target_path,
    n.target_type,
    n.target_id,
    n.target_name,
    n.policy_id,
    n.service_namespace,
    n.service_name,
    n.last_authenticated_time,
    u.previous_last_authenticated_time
FROM unused_now AS n
INNER JOIN used_before AS u
    ON
        n.target_path = u.target_path
        AND coalesce(n.policy_id, '') = u.policy_key
        AND n.service_namespace = u.service_namespace
ORDER BY n.target_path, coalesce(n.policy_id, ''), n.service_namespace
