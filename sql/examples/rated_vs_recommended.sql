-- What a user rated (best first) beside what they are recommended (by rank), row by row.
-- Variables: user_id, n (rows shown), alias.
--   psql -v user_id=42 -v n=10 -v alias=production -f sql/examples/rated_vs_recommended.sql
WITH rated AS (
    SELECT
        row_number() OVER (
            ORDER BY r.rating DESC NULLS LAST, r.rated_at DESC NULLS LAST, r.movie_id
        ) AS position,
        m.title,
        m.genres,
        r.rating
    FROM ratings AS r
    JOIN movies AS m ON m.movie_id = r.movie_id
    WHERE r.user_id = :user_id
),
recommended AS (
    SELECT rank AS position, title, genres, score
    FROM alias_recommendations
    WHERE alias = :'alias' AND user_id = :user_id
)
SELECT
    position,
    rated.title AS rated_title,
    rated.genres AS rated_genres,
    rated.rating,
    recommended.title AS recommended_title,
    recommended.genres AS recommended_genres,
    recommended.score
FROM rated
FULL JOIN recommended USING (position)
WHERE position <= :n
ORDER BY position;
