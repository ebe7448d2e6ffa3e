-- Guardrail SCP recommendations of the latest day, per root and OU: what each proposed SCP denies, what is new since the previous day, and what was withdrawn and why. The SCP text itself is in recommendations/dt=…/{target_id}.json.
-- One row per target and status; services proposed (NEW + UNCHANGED), newly proposed, withdrawn (used again or kept), done (denied now).
WITH latest_day AS (
    SELECT max(dt) AS dt FROM scp_recommendations
)
SELECT
    target_path,
    target_type,
    target_id,
    target_name,
    status,
    window_days,
    accounts_in_scope,
    count(DISTINCT policy_name) AS scps,
    max(policy_chars) AS largest_scp_chars,
    sum(CASE WHEN change IN ('NEW', 'UNCHANGED') THEN 1 ELSE 0 END) AS services_proposed,
    sum(CASE WHEN change = 'NEW' THEN 1 ELSE 0 END) AS newly_proposed,
    sum(CASE WHEN change = 'WITHDRAWN' THEN 1 ELSE 0 END) AS withdrawn,
    sum(CASE WHEN change = 'DONE' THEN 1 ELSE 0 END) AS done,
    max(reason) FILTER (WHERE change IS NULL OR change IN ('NEW', 'UNCHANGED')) AS reason
FROM scp_recommendations
WHERE dt = (SELECT dt FROM latest_day)
GROUP BY target_path, target_type, target_id, target_name, status, window_days, accounts_in_scope
ORDER BY services_proposed DESC, target_path
