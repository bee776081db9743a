-- Why rows were rejected or failed, per run, most frequent first (rank 1 = top reason).
WITH reasons AS (
    SELECT run_id, error, COUNT(*) AS rows
    FROM push_results
    WHERE error IS NOT NULL AND error <> ''
    GROUP BY run_id, error
)
SELECT
    run_id,
    error,
    rows,
    ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY rows DESC, error) AS rank
FROM reasons
