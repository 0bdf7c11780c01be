-- Every published version's similar items: for each movie the model learnt, its nearest movies
-- by cosine of the final embeddings (score in [-1, 1], the movie itself never listed), best
-- first, with both titles. Filter on version and movie_id.
CREATE OR REPLACE VIEW published_similar_items AS
SELECT
    s.version,
    s.movie_id,
    m.title,
    s.rank,
    s.similar_movie_id,
    sm.title AS similar_title,
    sm.genres AS similar_genres,
    sm.year AS similar_year,
    s.score
FROM similar_items AS s
JOIN model_versions AS v ON v.name = s.version AND v.status = 'published'
LEFT JOIN movies AS m ON m.movie_id = s.movie_id
LEFT JOIN movies AS sm ON sm.movie_id = s.similar_movie_id;
