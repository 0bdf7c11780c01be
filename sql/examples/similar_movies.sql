-- The N movies most like one movie in what is served now (cosine of the final item embeddings of
-- the version alias `production` resolves to), with titles.
-- Variables: movie_id, n.
--   psql -v movie_id=50 -v n=5 -f sql/examples/similar_movies.sql
SELECT rank, similar_movie_id, similar_title, similar_genres, score, title AS like_title, version
FROM production_similar_items
WHERE movie_id = :movie_id AND rank <= :n
ORDER BY rank;
