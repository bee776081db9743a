-- Live contacts per tag (a contact with the same tag twice counts once).
SELECT
    t.tag,
    COUNT(DISTINCT c.id) AS contacts,
    CAST(100.0 * COUNT(DISTINCT c.id) / (SELECT COUNT(*) FROM contacts_current) AS DECIMAL(5, 1))
        AS pct_of_live
FROM contacts_current AS c, UNNEST(c.tags) AS t(tag)
GROUP BY t.tag
