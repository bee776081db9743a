-- Contacts created and archived per day and per week (grain), with the running total of live
-- contacts at the end of each period. Periods are UTC calendar days / ISO weeks (Monday).
-- Only periods with at least one event appear.
WITH events AS (
    SELECT created_at AT TIME ZONE 'UTC' AS happened_at, 1 AS created, 0 AS archived
    FROM contacts_all
    UNION ALL
    -- deleted_at is when the sync saw the archive; fall back so every archived row is counted
    SELECT COALESCE(deleted_at, updated_at, created_at) AT TIME ZONE 'UTC', 0, 1
    FROM contacts_all
    WHERE is_deleted
),
grains AS (
    SELECT 'day' AS grain
    UNION ALL
    SELECT 'week'
),
per_period AS (
    SELECT
        g.grain,
        CAST(DATE_TRUNC(g.grain, e.happened_at) AS DATE) AS period_start,
        CAST(SUM(e.created) AS BIGINT) AS created,
        CAST(SUM(e.archived) AS BIGINT) AS archived
    FROM events AS e
    CROSS JOIN grains AS g
    GROUP BY g.grain, CAST(DATE_TRUNC(g.grain, e.happened_at) AS DATE)
)
SELECT
    grain,
    period_start,
    created,
    archived,
    created - archived AS net_change,
    CAST(
        SUM(created - archived) OVER (
            PARTITION BY grain ORDER BY period_start ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS BIGINT
    ) AS live_total
FROM per_period
