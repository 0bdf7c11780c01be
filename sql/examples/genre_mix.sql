-- Genre mix of what an alias's version recommends against the genre mix of all ratings. Each
-- genre of a movie counts once per recommendation (or rating); shares sum to 1 per column.
-- Variables: alias.
--   psql -v alias=production -f sql/examples/genre_mix.sql
WITH recommended AS (
    SELECT g.genre, count(*)::float8 / sum(count(*)) OVER () AS share
    FROM alias_recommendations AS r
    CROSS JOIN LATERAL unnest(r.genres) AS g (genre)
    WHERE r.alias = :'alias'
    GROUP BY g.genre
),
rated AS (
    SELECT g.genre, count(*)::float8 / sum(count(*)) OVER () AS share
    FROM ratings AS r
    JOIN movies AS m ON m.movie_id = r.movie_id
    CROSS JOIN LATERAL unnest(m.genres) AS g (genre)
    GROUP BY g.genre
)
SELECT
    genre,
    coalesce(recommended.share, 0) AS share_of_recommendations,
    coalesce(rated.share, 0) AS share_of_ratings,
    coalesce(recommended.share, 0) - coalesce(rated.share, 0) AS difference
FROM recommended
FULL JOIN rated USING (genre)
ORDER BY share_of_recommendations DESC, genre;
