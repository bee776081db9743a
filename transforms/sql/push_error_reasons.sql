-- Why rows were rejected or failed, per run, most frequent first (rank 1 = top reason).
-- Errors name the offending value; the reason blanks quoted values out and drops the
-- parenthesised / bracketed detail, so rows that failed the same way are counted together.
WITH errors AS (
    SELECT
        run_id,
        error,
        TRIM(REGEXP_REPLACE(
            REGEXP_REPLACE(error, '"[^"]*"|''[^'']*''', '<value>', 'g'),
            '\s*(\([^)]*\)|\[[^]]*\])', '', 'g'
        )) AS reason
    FROM push_results
    WHERE error IS NOT NULL AND error <> ''
),
reasons AS (
    SELECT run_id, reason, COUNT(*) AS rows, MIN(error) AS example
    FROM errors
    GROUP BY run_id, reason
)
SELECT
    run_id,
    reason,
    rows,
    ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY rows DESC, reason) AS rank,
    example
FROM reasons
