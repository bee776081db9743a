-- One row: how many contacts are live and archived, and the span of their timestamps.
SELECT
    COUNT(*) FILTER (WHERE NOT is_deleted) AS live_contacts,
    COUNT(*) FILTER (WHERE is_deleted) AS archived_contacts,
    COUNT(*) AS all_contacts,
    MIN(created_at) AS first_created_at,
    MAX(created_at) AS last_created_at,
    MAX(updated_at) AS last_updated_at
FROM contacts_all
