"""Write input into the ``movies``, ``users`` and ``ratings`` tables, all or nothing.

Everything happens in one transaction: the ratings are COPYed into a staging table as they are
read (a chunk at a time, so a file of any size takes one chunk's memory), movies and users are
staged and upserted, and the ratings merged (:mod:`recsys.ingest.load.rating_merge`). An error
anywhere, a bad line late in the file included, rolls everything back, so a failed ingest leaves the
database as it was.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from recsys.ingest.load.rating_merge import LARGE_LOAD, merge_ratings
from recsys.ingest.load.staging import stage_ratings
from recsys.ingest.load.upsert import TableCounts, merge_frame
from recsys.ingest.parse.records import (
    ParsedData,
    StreamedData,
    placeholder_movies,
    placeholder_users,
)
from recsys.privacy import erasure
from recsys.storage import schema

#: Rows of a parsed ratings frame staged at a time.
CHUNK_ROWS = 1 << 20


@dataclass(frozen=True)
class IngestReport:
    layout: str
    counts: tuple[TableCounts, ...]
    seconds: float
    #: Users of this ingest that ``forget`` erased before (ingested again, as new users).
    erased_again: int = 0

    @property
    def changed(self) -> bool:
        return any(c.inserted or c.updated for c in self.counts)

    def summary(self) -> str:
        parts = [
            f"{c.table}: {c.inserted:,} inserted, {c.updated:,} updated, {c.unchanged:,} unchanged"
            for c in self.counts
        ]
        verdict = "" if self.changed else " — nothing changed"
        return f"{'; '.join(parts)}{verdict} ({self.seconds:.1f} s)"


def load(
    engine: sa.Engine,
    data: ParsedData | StreamedData,
    progress: Callable[[int], None] | None = None,
    large_load: int = LARGE_LOAD,
) -> IngestReport:
    """Merge ``data`` into the input tables in one transaction.

    ``progress`` is called with the number of rows staged since the last call, for a progress
    bar. Loads of ``large_load`` ratings or more may take a way that drops and rebuilds the
    constraints of ``ratings`` (see :mod:`recsys.ingest.load.rating_merge`).
    """
    started = time.perf_counter()
    stream = data if isinstance(data, StreamedData) else _streamed(data)
    ids_wanted = stream.movies is None or stream.users is None
    with engine.begin() as conn:
        staged = stage_ratings(conn, stream.ratings, ids_wanted, progress)
        movies = stream.movies
        if movies is None:
            movies = placeholder_movies(staged.movie_ids)
        users = stream.users
        if users is None:
            users = placeholder_users(staged.user_ids)
        counts = (
            merge_frame(conn, schema.movies, movies, progress),
            merge_frame(conn, schema.users, users, progress),
            merge_ratings(conn, staged, stream.sources.get("ratings", "ratings"), large_load),
        )
        erased = erasure.erased_among(conn, "stage_users")
    return IngestReport(stream.layout, counts, time.perf_counter() - started, erased)


def _streamed(data: ParsedData) -> StreamedData:
    """A parsed input as chunks of its ratings frame."""

    def chunks(ratings: pd.DataFrame) -> Iterator[pd.DataFrame]:
        for start in range(0, len(ratings), CHUNK_ROWS):
            yield ratings.iloc[start : start + CHUNK_ROWS]

    return StreamedData(data.layout, chunks(data.ratings), data.movies, data.users, data.sources)
