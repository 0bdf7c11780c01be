-- What is served now: the recommendations of the version alias `production` points to, or of
-- the latest published version while that alias is not set.
CREATE OR REPLACE VIEW production_recommendations AS
SELECT version, user_id, rank, movie_id, title, genres, year, score, source
FROM alias_recommendations
WHERE alias = 'production';
