-- Every published version's recommendations, with the movie's title, genres and year.
-- Versions that are running or failed never appear; a movie missing from `movies` keeps its row
-- with a NULL title rather than vanishing.
CREATE OR REPLACE VIEW published_recommendations AS
SELECT
    r.version,
    r.user_id,
    r.rank,
    r.movie_id,
    m.title,
    m.genres,
    m.year,
    r.score,
    r.source
FROM recommendations AS r
JOIN model_versions AS v ON v.name = r.version AND v.status = 'published'
LEFT JOIN movies AS m ON m.movie_id = r.movie_id;
