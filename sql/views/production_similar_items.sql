-- The similar items of what is served now: the version alias `production` points to, or the
-- latest published version while that alias is not set (see current_aliases).
CREATE OR REPLACE VIEW production_similar_items AS
SELECT
    s.version,
    s.movie_id,
    s.title,
    s.rank,
    s.similar_movie_id,
    s.similar_title,
    s.similar_genres,
    s.similar_year,
    s.score
FROM current_aliases AS a
JOIN published_similar_items AS s ON s.version = a.version
WHERE a.alias = 'production';
