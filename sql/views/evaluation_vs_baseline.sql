-- Each published version's evaluation, a model's figure beside the baselines' from the same run
-- (same split, same users): the lift over popularity, absolute (value - baseline) and relative
-- (value / baseline - 1, NULL when the baseline scored 0), and the lift over the strongest
-- baseline of that metric and cut-off (popularity or the gf-cf spectral filter, whichever scored
-- higher; for a baseline's own row, the strongest other one). A negative lift over the strongest
-- baseline means a training-free method did better on this metric.
CREATE OR REPLACE VIEW evaluation_vs_baseline AS
SELECT
    e.version,
    e.model,
    e.metric,
    e.k,
    e.value,
    b.value AS baseline_value,
    e.value - b.value AS lift,
    e.value / NULLIF(b.value, 0) - 1 AS relative_lift,
    e.users_counted,
    v.published_at,
    s.model AS strongest_baseline,
    s.value AS strongest_baseline_value,
    e.value - s.value AS lift_over_strongest,
    e.value / NULLIF(s.value, 0) - 1 AS relative_lift_over_strongest
FROM evaluation_results AS e
JOIN model_versions AS v ON v.name = e.version AND v.status = 'published'
LEFT JOIN evaluation_results AS b
    ON b.version = e.version AND b.model = 'popularity' AND b.metric = e.metric AND b.k = e.k
LEFT JOIN LATERAL (
    SELECT o.model, o.value
    FROM evaluation_results AS o
    WHERE o.version = e.version AND o.metric = e.metric AND o.k = e.k
        AND o.model IN ('popularity', 'gf-cf') AND o.model <> e.model
    ORDER BY o.value DESC, o.model
    LIMIT 1
) AS s ON true
WHERE e.model <> 'popularity';
