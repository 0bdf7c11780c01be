"""``read_snapshot`` against a real PostgreSQL: exactly the rows, in order, with every kind of
value (NULL ratings and times, fractional seconds, the largest ids), across many pages.

The expected snapshot is built here from a plain SELECT, row by row, the way the definitions in
``Snapshot`` read: an oracle that shares no code with the binary page reader.
"""

from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from recsys.data import snapshot as snapshot_module
from recsys.data.snapshot import Snapshot, read_snapshot
from recsys.storage import schema as tables

BIG = 2**63 - 1
USERS = [0, 3, 7, 42, BIG - 1, BIG]
MOVIES = [1, 2, 5, 9, 10, BIG]
RATINGS = [
    (0, 1, 4.0, datetime(2001, 1, 1, tzinfo=UTC)),
    (0, BIG, None, datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
    (3, 2, 2.5, None),
    (3, 5, None, None),
    (7, 1, 0.5, datetime(1970, 1, 1, tzinfo=UTC)),
    (7, 9, 5.0, datetime(1969, 7, 20, 20, 17, 40, 123_457, tzinfo=UTC)),
    (BIG, 2, 3.0, datetime(2262, 4, 1, tzinfo=UTC)),
    (BIG, BIG, 1.0, datetime(2020, 2, 29, 12, tzinfo=UTC)),
    (BIG - 1, 5, 4.5, datetime(2010, 6, 1, tzinfo=UTC)),
]  # user 42 and movie 10 have no ratings


@pytest.fixture
def filled(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.users), [{"user_id": u} for u in USERS])
        conn.execute(sa.insert(tables.movies), [{"movie_id": m, "title": f"M{m}"} for m in MOVIES])
        conn.execute(
            sa.insert(tables.ratings),
            [
                dict(zip(("user_id", "movie_id", "rating", "rated_at"), r, strict=True))
                for r in RATINGS
            ],
        )
    return engine


def expected(engine: sa.Engine, min_rating: float | None) -> Snapshot:
    """The snapshot by its definition, from rows fetched one by one."""
    ratings = tables.ratings
    with engine.connect() as conn:
        user_ids = sorted(conn.execute(sa.select(tables.users.c.user_id)).scalars())
        movies_total = conn.execute(sa.select(sa.func.count()).select_from(tables.movies)).scalar()
        rows = conn.execute(
            sa.select(ratings).order_by(ratings.c.user_id, ratings.c.movie_id)
        ).all()
    counted = [r for r in rows if r.rating is None or min_rating is None or r.rating >= min_rating]
    item_ids = sorted({r.movie_id for r in counted})

    def seconds(row: sa.Row) -> float:
        return np.nan if row.rated_at is None else row.rated_at.timestamp()

    return Snapshot(
        user_ids=np.array(user_ids, dtype=np.int64),
        item_ids=np.array(item_ids, dtype=np.int64),
        user=np.array([user_ids.index(r.user_id) for r in counted], dtype=np.int32),
        item=np.array([item_ids.index(r.movie_id) for r in counted], dtype=np.int32),
        rating=np.array([np.nan if r.rating is None else r.rating for r in counted], np.float32),
        timestamp=np.array([seconds(r) for r in counted], dtype=np.float64),
        rated_user=np.array([user_ids.index(r.user_id) for r in rows], dtype=np.int32),
        rated_item=np.array([r.movie_id for r in rows], dtype=np.int64),
        movies_total=movies_total,
    )


def same(found: Snapshot, wanted: Snapshot) -> None:
    for name, value in vars(wanted).items():
        got = getattr(found, name)
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype, name
            np.testing.assert_array_equal(got, value, err_msg=name)
        else:
            assert got == value, name


@pytest.mark.parametrize("page_rows", [2, 3, 1 << 19])
@pytest.mark.parametrize("min_rating", [None, 3.0])
def test_the_snapshot_holds_every_rating_as_stored(
    filled: sa.Engine, monkeypatch: pytest.MonkeyPatch, page_rows: int, min_rating: float | None
) -> None:
    monkeypatch.setattr(snapshot_module, "PAGE_ROWS", page_rows)
    found = read_snapshot(filled, min_rating)
    same(found, expected(filled, min_rating))
    assert found.n_users == len(USERS)
    assert found.n_items == 5  # movie 10 has no ratings; with min_rating, 2 and 5 still count


def test_fractional_seconds_are_exact(filled: sa.Engine) -> None:
    found = read_snapshot(filled)
    (row,) = np.flatnonzero(found.rated_item == 9)
    assert found.timestamp[row] == -14182940 + 0.123457  # 1969-07-20 20:17:40.123457 UTC


def test_empty_tables_give_empty_arrays(engine: sa.Engine) -> None:
    same(read_snapshot(engine), expected(engine, None))
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.users), [{"user_id": 5}])
    found = read_snapshot(engine, 4.0)
    assert found.n_users == 1 and len(found.user) == 0 and found.movies_total == 0
