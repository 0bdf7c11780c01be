"""Read one consistent snapshot of the interactions and map ids to contiguous indices.

The read runs in a REPEATABLE READ, read-only transaction so the ratings, users and movies it
sees belong to the same moment even while an ingest commits alongside.
"""

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from psycopg import sql

from recsys.storage import schema
from recsys.storage.bulk import read_frame, schema_of


@dataclass(frozen=True)
class Snapshot:
    """Interactions as index arrays, plus the external ids behind the indices.

    Users are every row of ``users`` (each gets recommendations); items are the movies that have at
    least one counted interaction (only those can be in the graph).
    """

    user_ids: np.ndarray  # int64 external id of user index i
    item_ids: np.ndarray  # int64 external id of item index j
    user: np.ndarray  # int32 user index per interaction
    item: np.ndarray  # int32 item index per interaction
    rating: np.ndarray  # float32, NaN for implicit feedback
    timestamp: np.ndarray  # float64 unix seconds, NaN when unknown
    rated_user: np.ndarray  # int32 user index of every rating (counted or not): never recommended
    rated_item: np.ndarray  # int64 external movie id of every rating
    movies_total: int

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def read_snapshot(engine: sa.Engine, min_rating: float | None = None) -> Snapshot:
    """Read users, movies and ratings; ratings below ``min_rating`` do not count as interactions
    (NULL ratings, i.e. implicit feedback, always count)."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            namespace = schema_of(conn)
            users = read_frame(
                conn,
                sql.SQL("SELECT user_id FROM {} ORDER BY user_id").format(
                    sql.Identifier(namespace, "users")
                ),
                {"user_id": "int64"},
            )
            ratings = read_frame(
                conn,
                sql.SQL(
                    "SELECT user_id, movie_id, rating, extract(epoch FROM rated_at) AS ts FROM {}"
                    " ORDER BY user_id, movie_id"  # a seed must give the same split every time
                ).format(sql.Identifier(namespace, "ratings")),
                {"user_id": "int64", "movie_id": "int64", "rating": "float32", "ts": "float64"},
            )
            movies_total = conn.execute(
                sa.select(sa.func.count()).select_from(schema.movies)
            ).scalar_one()
    user_ids = users["user_id"].to_numpy()
    rated_user = np.searchsorted(user_ids, ratings["user_id"].to_numpy()).astype(np.int32)
    rating = ratings["rating"].to_numpy()
    counted = np.ones(len(ratings), dtype=bool)
    if min_rating is not None:
        counted = np.isnan(rating) | (rating >= min_rating)
    kept = ratings[counted]
    item_ids, item = np.unique(kept["movie_id"].to_numpy(), return_inverse=True)
    return Snapshot(
        user_ids=user_ids,
        item_ids=item_ids,
        user=rated_user[counted],
        item=item.astype(np.int32),
        rating=kept["rating"].to_numpy(np.float32),
        timestamp=kept["ts"].to_numpy(np.float64),
        rated_user=rated_user,
        rated_item=ratings["movie_id"].to_numpy(),
        movies_total=int(movies_total),
    )
