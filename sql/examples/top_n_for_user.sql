-- Top-N recommendations for one user, from the version an alias points to.
-- Variables: user_id, n, alias (e.g. production).
--   psql -v user_id=42 -v n=5 -v alias=production -f sql/examples/top_n_for_user.sql
SELECT rank, movie_id, title, genres, score, source, version
FROM alias_recommendations
WHERE alias = :'alias' AND user_id = :user_id AND rank <= :n
ORDER BY rank;
