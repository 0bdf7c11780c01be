-- The similar items of what is served now: the version alias `production` points to, or the
-- latest published version while that alias is not set (see current_aliases). pinned_version
-- is filled in as for production_recommendations: planned against one partition once
-- `production` is set.
CREATE OR REPLACE VIEW production_similar_items AS
SELECT
    version,
    movie_id,
    title,
    rank,
    similar_movie_id,
    similar_title,
    similar_genres,
    similar_year,
    score
FROM published_similar_items
WHERE (version = :'pinned_version' OR :'pinned_version' IS NULL)
    AND version = (SELECT version FROM current_aliases WHERE alias = 'production');
