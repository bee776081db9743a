-- Live contacts per status, in funnel order (lead, active, customer, then the rest by size).
SELECT
    COALESCE(status, '(none)') AS status,
    CASE status WHEN 'lead' THEN 1 WHEN 'active' THEN 2 WHEN 'customer' THEN 3 ELSE 4 END
        AS stage_order,
    COUNT(*) AS contacts,
    CAST(100.0 * COUNT(*) / SUM(COUNT(*)) OVER () AS DECIMAL(5, 1)) AS pct_of_live
FROM contacts_current
GROUP BY status
