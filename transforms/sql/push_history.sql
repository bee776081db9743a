-- One row per push run: rows by planned action and by outcome, and the most frequent error.
WITH runs AS (
    SELECT
        run_id,
        MIN(pushed_at) AS started_at,
        MAX(pushed_at) AS finished_at,
        COUNT(*) AS rows,
        COUNT(*) FILTER (WHERE action = 'create') AS action_create,
        COUNT(*) FILTER (WHERE action = 'update') AS action_update,
        COUNT(*) FILTER (WHERE action = 'unchanged') AS action_unchanged,
        COUNT(*) FILTER (WHERE action = 'reject') AS action_reject,
        COUNT(*) FILTER (WHERE outcome = 'created') AS created,
        COUNT(*) FILTER (WHERE outcome = 'updated') AS updated,
        COUNT(*) FILTER (WHERE outcome = 'unchanged') AS unchanged,
        COUNT(*) FILTER (WHERE outcome = 'rejected') AS rejected,
        COUNT(*) FILTER (WHERE outcome = 'failed') AS failed
    FROM push_results
    GROUP BY run_id
)
SELECT r.*, e.reason AS top_error, COALESCE(e.rows, 0) AS top_error_rows
FROM runs AS r
LEFT JOIN push_error_reasons AS e ON e.run_id = r.run_id AND e.rank = 1
