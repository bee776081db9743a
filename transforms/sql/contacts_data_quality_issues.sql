-- One row per (live contact, problem). Duplicates are the rows that make a push ambiguous:
-- several live contacts share an email (case-insensitive) or a phone (ignoring formatting).
WITH live AS (
    SELECT
        id, first_name, last_name, email, phone,
        LOWER(TRIM(NULLIF(TRIM(email), ''))) AS email_key,
        NULLIF(REGEXP_REPLACE(COALESCE(phone, ''), '[^0-9+]', '', 'g'), '') AS phone_key
    FROM contacts_current
),
keyed AS (
    SELECT
        *,
        COUNT(*) OVER (PARTITION BY email_key) AS email_group_size,
        COUNT(*) OVER (PARTITION BY phone_key) AS phone_group_size
    FROM live
)
SELECT id, 'missing_email_and_phone' AS issue, CAST(NULL AS VARCHAR) AS value, 1 AS group_size,
    first_name, last_name, email, phone
FROM keyed WHERE email_key IS NULL AND phone_key IS NULL
UNION ALL
SELECT id, 'missing_email', NULL, 1, first_name, last_name, email, phone
FROM keyed WHERE email_key IS NULL
UNION ALL
SELECT id, 'missing_phone', NULL, 1, first_name, last_name, email, phone
FROM keyed WHERE phone_key IS NULL
UNION ALL
SELECT id, 'phone_not_e164', phone, 1, first_name, last_name, email, phone
FROM keyed WHERE phone_key IS NOT NULL AND NOT REGEXP_MATCHES(phone, '^\+[1-9]\d{1,14}$')
UNION ALL
SELECT id, 'duplicate_email', email_key, email_group_size, first_name, last_name, email, phone
FROM keyed WHERE email_key IS NOT NULL AND email_group_size > 1
UNION ALL
SELECT id, 'duplicate_phone', phone_key, phone_group_size, first_name, last_name, email, phone
FROM keyed WHERE phone_key IS NOT NULL AND phone_group_size > 1
