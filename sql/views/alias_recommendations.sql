-- Recommendations of the version each alias points to (see current_aliases), with titles and
-- genres. Filter on alias: WHERE alias = 'production'.
CREATE OR REPLACE VIEW alias_recommendations AS
SELECT
    a.alias,
    r.version,
    r.user_id,
    r.rank,
    r.movie_id,
    r.title,
    r.genres,
    r.year,
    r.score,
    r.source
FROM current_aliases AS a
JOIN published_recommendations AS r ON r.version = a.version;
