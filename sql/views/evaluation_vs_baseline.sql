-- Each published version's evaluation, a model's figure beside the popularity baseline's from
-- the same run (same split, same users) and the lift over it: absolute (value - baseline) and
-- relative (value / baseline - 1, NULL when the baseline scored 0).
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
    v.published_at
FROM evaluation_results AS e
JOIN model_versions AS v ON v.name = e.version AND v.status = 'published'
LEFT JOIN evaluation_results AS b
    ON b.version = e.version AND b.model = 'popularity' AND b.metric = e.metric AND b.k = e.k
WHERE e.model <> 'popularity';
