-- One row per data-quality check: how many live contacts fail it (0 when none do).
WITH checks(check_order, issue, description) AS (
    VALUES
        (1, 'missing_email_and_phone', 'no email and no phone: unreachable'),
        (2, 'missing_email', 'no email'),
        (3, 'missing_phone', 'no phone'),
        (4, 'phone_not_e164', 'phone not in E.164 form (+ country code, up to 15 digits)'),
        (5, 'duplicate_email', 'email shared with another live contact (ambiguous push match)'),
        (6, 'duplicate_phone', 'phone shared with another live contact (ambiguous push match)')
),
live AS (
    SELECT COUNT(*) AS n FROM contacts_current
)
SELECT
    c.check_order,
    c.issue,
    c.description,
    COUNT(i.id) AS contacts,
    CAST(100.0 * COUNT(i.id) / NULLIF(MAX(live.n), 0) AS DECIMAL(5, 1)) AS pct_of_live
FROM checks AS c
CROSS JOIN live
LEFT JOIN contacts_data_quality_issues AS i ON i.issue = c.issue
GROUP BY c.check_order, c.issue, c.description
