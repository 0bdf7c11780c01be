-- Every move of every alias: from which version to which, and when it held. The current row has
-- valid_to NULL. History outlives pruned versions: version_status is 'pruned' for a version
-- whose outputs and registry row are gone (its name is all that is shown). note: why a run's
-- --if-better gate moved the alias (its figure and the champion's); NULL for a manual promote.
CREATE OR REPLACE VIEW alias_history AS
SELECT
    h.alias,
    lag(h.version) OVER (PARTITION BY h.alias ORDER BY h.valid_from) AS previous_version,
    h.version,
    h.valid_from,
    h.valid_to,
    h.valid_to IS NULL AS is_current,
    coalesce(v.status, 'pruned') AS version_status,
    h.note
FROM version_aliases AS h
LEFT JOIN model_versions AS v ON v.name = h.version;
