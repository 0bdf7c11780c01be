"""Temporary staging tables, where input rows wait inside the ingest's transaction to be merged.

Ratings are staged a chunk at a time with binary COPY (``recsys.storage.binary_copy``) while
the file is still being read, so their memory is one chunk's; movies and users, a catalogue's
worth, are COPYed whole. Staging tables are dropped at commit and never visible to other
sessions.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql as pg

from recsys.ingest.load.distinct_ids import DistinctIds
from recsys.storage.binary_copy import binary_copy
from recsys.storage.bulk import array_literal, copy_frame

# PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC; its smallest value is
# -infinity, which stands in for a missing time.
_EPOCH_2000_US = 946_684_800_000_000
MINUS_INFINITY = np.iinfo(np.int64).min

#: The staged ratings. A missing rating is NaN and a missing time -infinity (binary COPY rows
#: are fixed-width); the merge reads them as NULL. ``line`` is the row's line in its file.
RATING_COLUMNS = (
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("movie_id", sa.BigInteger, nullable=False),
    sa.Column("rating", sa.Float(53), nullable=False),
    sa.Column("rated_at", pg.TIMESTAMP(timezone=True), nullable=False),
    sa.Column("line", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class StagedRatings:
    """The staging table, its row count, and the distinct ids it holds when they were asked for
    (placeholders are made for them)."""

    table: sa.Table
    rows: int
    user_ids: np.ndarray | None
    movie_ids: np.ndarray | None


def staging_table(conn: sa.Connection, name: str, columns: Sequence[sa.Column]) -> sa.Table:
    """A temporary table with these columns, dropped at commit."""
    stage = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c.name, c.type, nullable=c.nullable) for c in columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    stage.create(conn)
    return stage


def stage_ratings(
    conn: sa.Connection,
    chunks: Iterable[pd.DataFrame],
    ids_wanted: bool,
    progress: Callable[[int], None] | None = None,
) -> StagedRatings:
    """COPY the ratings chunks (binary) into a staging table as they come; with ``ids_wanted``,
    note the distinct user and movie ids on the way."""
    stage = staging_table(conn, "stage_ratings", RATING_COLUMNS)
    users, movies = DistinctIds(), DistinctIds()
    rows = 0
    names = [c.name for c in RATING_COLUMNS]
    with binary_copy(conn, sql.Identifier(stage.name), names) as write:
        for frame in chunks:
            user_id = frame["user_id"].to_numpy(np.int64)
            movie_id = frame["movie_id"].to_numpy(np.int64)
            if ids_wanted:
                users.add(user_id)
                movies.add(movie_id)
            rows += write(
                [
                    user_id,
                    movie_id,
                    frame["rating"].to_numpy(np.float64),
                    timestamps(frame["rated_at"]),
                    frame["line"].to_numpy(np.int64),
                ]
            )
            if progress is not None:
                progress(len(frame))
    if ids_wanted:
        return StagedRatings(stage, rows, users.result(), movies.result())
    return StagedRatings(stage, rows, None, None)


def timestamps(times: pd.Series) -> np.ndarray:
    """UTC datetimes as the int64 that binary COPY sends for ``timestamptz`` (microseconds from
    2000-01-01), rounded half to even as PostgreSQL rounds text input; NaT becomes -infinity."""
    nanos = times.to_numpy(dtype="datetime64[ns]").view(np.int64)
    micros, rest = np.divmod(nanos, 1000)
    micros += (rest > 500) | ((rest == 500) & (micros % 2 == 1))
    return np.where(pd.isna(times).to_numpy(), MINUS_INFINITY, micros - _EPOCH_2000_US)


def stage_frame(
    conn: sa.Connection,
    target: sa.Table,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None = None,
) -> sa.Table:
    """COPY a movies or users frame (``target``'s columns plus ``line``) into a staging table.

    Columns empty in every row are left out of the COPY (they stage as NULL all the same), which
    keeps a million placeholder users to two numbers a row.
    """
    columns = [sa.Column(c.name, c.type) for c in target.columns]
    columns.append(sa.Column("line", sa.BigInteger))
    stage = staging_table(conn, f"stage_{target.name}", columns)
    present = [c.name for c in columns if frame[c.name].notna().any() or c.name == "line"]
    rows = frame[present]
    if "genres" in rows:
        rows = rows.assign(genres=rows["genres"].map(array_literal))
    copy_frame(conn, sql.Identifier(stage.name), rows, progress)
    return stage
