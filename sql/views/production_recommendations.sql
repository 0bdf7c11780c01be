-- What is served now: the recommendations of the version alias `production` points to, or of
-- the latest published version while that alias is not set (see current_aliases).
-- recsys fills in pinned_version whenever `production` moves: the version it points to, or NULL
-- while it is not set. Named as a constant, it lets PostgreSQL plan that version's partition
-- alone, however many versions are kept (unset, every partition is planned); the condition on
-- current_aliases keeps the view exact whatever the constant says.
CREATE OR REPLACE VIEW production_recommendations AS
SELECT version, user_id, rank, movie_id, title, genres, year, score, source
FROM published_recommendations
WHERE (version = :'pinned_version' OR :'pinned_version' IS NULL)
    AND version = (SELECT version FROM current_aliases WHERE alias = 'production');
