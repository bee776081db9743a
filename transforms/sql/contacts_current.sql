-- Live contacts only: one row per contact the API still lists.
SELECT
    id, first_name, last_name, phone, email, company, job_title, status, tags, custom_fields,
    created_at, updated_at
FROM contacts_all
WHERE NOT is_deleted
