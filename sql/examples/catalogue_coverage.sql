-- Catalogue coverage per published version: the share of all movies that appear in at least one
-- user's recommendations, and the share of recommendation slots filled by popularity fallback.
--   psql -f sql/examples/catalogue_coverage.sql
SELECT
    r.version,
    count(DISTINCT r.user_id) AS users,
    count(DISTINCT r.movie_id) AS movies_recommended,
    c.movies AS catalogue_size,
    count(DISTINCT r.movie_id)::float8 / NULLIF(c.movies, 0) AS coverage,
    avg((r.source = 'fallback')::int::float8) AS fallback_share
FROM published_recommendations AS r
CROSS JOIN (SELECT count(*) AS movies FROM movies) AS c
GROUP BY r.version, c.movies
ORDER BY r.version;
