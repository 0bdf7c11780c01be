-- Which published version each alias points to now. When no alias `production` points to a
-- published version, `production` resolves to the most recently published version instead
-- (resolved_by = 'latest published'), so there is always something to serve once a run succeeded.
CREATE OR REPLACE VIEW current_aliases AS
WITH set_aliases AS (
    SELECT a.alias, a.version, a.valid_from
    FROM version_aliases AS a
    JOIN model_versions AS v ON v.name = a.version AND v.status = 'published'
    WHERE a.valid_to IS NULL
),
latest AS (
    SELECT name, published_at
    FROM model_versions
    WHERE status = 'published'
    ORDER BY published_at DESC, name DESC
    LIMIT 1
)
SELECT alias, version, valid_from AS since, 'alias'::text AS resolved_by
FROM set_aliases
UNION ALL
SELECT 'production'::text, name, published_at, 'latest published'::text
FROM latest
WHERE NOT EXISTS (SELECT 1 FROM set_aliases WHERE alias = 'production');
