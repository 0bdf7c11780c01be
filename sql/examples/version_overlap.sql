-- How much two published versions agree: Jaccard@k of each user's top-k lists
-- (|shared| / |either|), averaged over the users either version recommends to. 1 = identical sets.
-- Variables: version_a, version_b, k.
--   psql -v version_a=v1 -v version_b=v2 -v k=10 -f sql/examples/version_overlap.sql
WITH a AS (
    SELECT user_id, movie_id
    FROM published_recommendations
    WHERE version = :'version_a' AND rank <= :k
),
b AS (
    SELECT user_id, movie_id
    FROM published_recommendations
    WHERE version = :'version_b' AND rank <= :k
),
per_user AS (
    SELECT
        coalesce(a.user_id, b.user_id) AS user_id,
        count(a.movie_id) FILTER (WHERE b.movie_id IS NOT NULL) AS shared,
        count(*) AS either
    FROM a
    FULL JOIN b ON b.user_id = a.user_id AND b.movie_id = a.movie_id
    GROUP BY coalesce(a.user_id, b.user_id)
)
SELECT
    count(*) AS users,
    avg(shared::float8 / either) AS mean_jaccard,
    avg((shared = either)::int::float8) AS identical_share
FROM per_user;
