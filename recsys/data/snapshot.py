"""Read one consistent snapshot of the interactions and map ids to contiguous indices.

The read runs in a REPEATABLE READ, read-only transaction so the ratings, users and movies it
sees belong to the same moment even while an ingest commits alongside.

Rows arrive as binary, a page at a time: the server packs each page's rows into one ``bytea``
of fixed-width big-endian fields (``int8send``, ``float8send``), which numpy reads in place. No
Python object is made per row, and a COPY, which sends a message per row and so costs a Python
step per row, is avoided; memory is the result arrays plus one page. Missing ratings and times
travel as NaN.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from psycopg import sql

from recsys.storage.bulk import driver_connection, schema_of

#: Rows read per page (about 14 MB of ratings).
PAGE_ROWS = 1 << 19
_RATING_ROW = np.dtype([("user_id", ">i8"), ("movie_id", ">i8"), ("rating", ">f4"), ("ts", ">f8")])


@dataclass(frozen=True)
class Snapshot:
    """Interactions as index arrays, plus the external ids behind the indices.

    Users are every row of ``users`` (each gets recommendations); items are the movies that have at
    least one counted interaction (only those can be in the graph). When every rating counts,
    ``user`` and ``rated_user`` are the same array.
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


@dataclass(frozen=True)
class _Ratings:
    """Every rating, ordered by (user, movie), with ids as positions in the sorted id lists."""

    user: np.ndarray  # int32 position in user_ids
    movie: np.ndarray  # int32 position in the movie ids
    rating: np.ndarray  # float32
    timestamp: np.ndarray  # float64


def read_snapshot(engine: sa.Engine, min_rating: float | None = None) -> Snapshot:
    """Read users, movies and ratings; ratings below ``min_rating`` do not count as interactions
    (NULL ratings, i.e. implicit feedback, always count)."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            reader = _PageReader(conn)
            user_ids = reader.ids("users", "user_id")
            movie_ids = reader.ids("movies", "movie_id")
            ratings = reader.ratings(user_ids, movie_ids)
    counted = np.ones(len(ratings.rating), dtype=bool)
    if min_rating is not None:
        counted = np.isnan(ratings.rating) | (ratings.rating >= min_rating)
    everything = bool(counted.all())

    def kept(values: np.ndarray) -> np.ndarray:
        return values if everything else values[counted]

    # Items: the movies with a counted interaction, in id order (as np.unique would give them).
    movie = kept(ratings.movie)
    present = np.bincount(movie, minlength=len(movie_ids)) > 0
    item_index = (np.cumsum(present) - 1).astype(np.int32)
    return Snapshot(
        user_ids=user_ids,
        item_ids=movie_ids[present],
        user=kept(ratings.user),
        item=item_index[movie],
        rating=kept(ratings.rating),
        timestamp=kept(ratings.timestamp),
        rated_user=ratings.user,
        rated_item=movie_ids[ratings.movie],
        movies_total=len(movie_ids),
    )


class _PageReader:
    """Reads tables in key order, a page of rows per query, inside the caller's transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._cursor = driver_connection(conn).cursor(binary=True)
        self._namespace = schema_of(conn)

    def ids(self, table: str, column: str) -> np.ndarray:
        """A table's ids in ascending order (int64)."""
        packed = sql.SQL("int8send({})").format(sql.Identifier(column))
        pages = self._pages(table, [column], packed, np.dtype([(column, ">i8")]))
        return np.concatenate([np.empty(0, np.int64), *(page[column] for page in pages)])

    def ratings(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> _Ratings:
        """Every rating by (user, movie), into arrays sized by a count first (filling them
        page by page holds no second copy); ids become positions as each page arrives."""
        (total,) = self._cursor.execute(
            sql.SQL("SELECT count(*) FROM {}").format(self._table("ratings"))
        ).fetchone()
        out = _Ratings(
            np.empty(total, np.int32),
            np.empty(total, np.int32),
            np.empty(total, np.float32),
            np.empty(total, np.float64),
        )
        packed = sql.SQL(
            "int8send(user_id) || int8send(movie_id) || float4send(coalesce(rating, 'NaN'))"
            " || float8send(coalesce(date_part('epoch', rated_at), 'NaN'))"
        )
        start = 0
        for page in self._pages("ratings", ["user_id", "movie_id"], packed, _RATING_ROW):
            rows = slice(start, start + len(page))
            out.user[rows] = np.searchsorted(user_ids, page["user_id"])
            out.movie[rows] = np.searchsorted(movie_ids, page["movie_id"])
            out.rating[rows] = page["rating"]
            out.timestamp[rows] = page["ts"]
            start = rows.stop
        return out

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self._namespace, name)

    def _pages(
        self, table: str, keys: list[str], packed: sql.Composable, row: np.dtype
    ) -> Iterator[np.ndarray]:
        """Pages of rows as structured arrays of ``row``, whose first fields are ``keys``: each
        page starts after the last key of the one before (an index range scan, not an OFFSET).

        Which rows make a page is exact (ORDER BY … LIMIT); the order ``string_agg`` joins them
        in is, by the SQL standard, not promised, and sorting inside the aggregate would cost
        the server a second sort, so the page is checked here and sorted in the rare case.
        """
        key = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
        after = sql.SQL(", ").join([sql.Placeholder()] * len(keys))
        query = sql.SQL(
            "SELECT string_agg({packed}, ''::bytea) FROM"
            " (SELECT * FROM {table} WHERE ({key}) > ({after}) ORDER BY {key} LIMIT %s) page"
        ).format(packed=packed, key=key, table=self._table(table), after=after)
        last = (-1,) * len(keys)  # ids are never negative
        while True:
            (data,) = self._cursor.execute(query, (*last, PAGE_ROWS)).fetchone()
            if data is None:
                return
            page = np.frombuffer(data, dtype=row)
            columns = [page[k] for k in keys]
            if not _ascending(columns):
                page = page[np.lexsort(columns[::-1])]
            yield page
            if len(page) < PAGE_ROWS:
                return
            last = tuple(int(page[k][-1]) for k in keys)


def _ascending(columns: list[np.ndarray]) -> bool:
    """Whether the rows of these key columns are in strictly ascending order."""
    greater = np.zeros(max(len(columns[0]) - 1, 0), dtype=bool)
    equal = ~greater
    for column in columns:
        before, after = column[:-1], column[1:]
        greater |= equal & (after > before)
        equal &= after == before
    return bool(greater.all())
