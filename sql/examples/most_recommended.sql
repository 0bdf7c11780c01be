-- The movies recommended to the most users, per published version, with the share of that
-- version's users who get each one.
-- Variables: n (movies per version).
--   psql -v n=10 -f sql/examples/most_recommended.sql
WITH counts AS (
    SELECT version, movie_id, title, count(*) AS recommended_to
    FROM published_recommendations
    GROUP BY version, movie_id, title
),
audience AS (
    SELECT version, count(DISTINCT user_id) AS users
    FROM published_recommendations
    GROUP BY version
),
ranked AS (
    SELECT
        c.version,
        row_number() OVER (
            PARTITION BY c.version ORDER BY c.recommended_to DESC, c.movie_id
        ) AS place,
        c.movie_id,
        c.title,
        c.recommended_to,
        c.recommended_to::float8 / a.users AS share_of_users
    FROM counts AS c
    JOIN audience AS a ON a.version = c.version
)
SELECT version, place, movie_id, title, recommended_to, share_of_users
FROM ranked
WHERE place <= :n
ORDER BY version, place;
