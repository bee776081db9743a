-- Rows of every push run by planned action and final outcome.
SELECT
    run_id,
    MIN(pushed_at) AS started_at,
    action,
    outcome,
    COUNT(*) AS rows
FROM push_results
GROUP BY run_id, action, outcome
