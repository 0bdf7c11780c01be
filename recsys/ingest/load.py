"""Write parsed input into the ``movies``, ``users`` and ``ratings`` tables, all or nothing.

Each table is COPYed into a temporary staging table and merged with one upsert, all in a single
transaction: an error anywhere rolls everything back, so a failed ingest leaves the database as it
was. The upsert only touches rows whose values differ, which makes re-ingesting the same files a
no-op that reports every row as unchanged. Rows the parser derived (``line == 0``: users seen only
in ratings, placeholder movies) never overwrite what is already stored.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import insert

from recsys.ingest.records import ParsedData
from recsys.storage import schema
from recsys.storage.bulk import array_literal, copy_frame


@dataclass(frozen=True)
class TableCounts:
    table: str
    inserted: int
    updated: int
    unchanged: int

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True)
class IngestReport:
    layout: str
    counts: tuple[TableCounts, ...]
    seconds: float

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
    data: ParsedData,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Merge ``data`` into the input tables in one transaction.

    ``progress`` is called with the number of rows staged so far, for a progress bar.
    """
    started = time.perf_counter()
    frames = (
        (schema.movies, _movie_rows(data.movies)),
        (schema.users, data.users),
        (schema.ratings, data.ratings),
    )
    with engine.begin() as conn:
        counts = tuple(_merge(conn, table, frame, progress) for table, frame in frames)
    return IngestReport(data.layout, counts, time.perf_counter() - started)


def _movie_rows(movies: pd.DataFrame) -> pd.DataFrame:
    return movies.assign(genres=movies["genres"].map(array_literal))


def _merge(
    conn: sa.Connection,
    target: sa.Table,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None,
) -> TableCounts:
    stage = _staging_table(conn, target)
    columns = [c.name for c in target.columns]
    copy_frame(conn, sql.Identifier(stage.name), frame[[*columns, "line"]], progress)

    keys = [c.name for c in target.primary_key.columns]
    values = [c for c in columns if c not in keys]
    explicit = _upsert(target, stage, columns, stage.c.line > 0, keys, values)
    derived = _upsert(target, stage, columns, stage.c.line == 0, keys, None)
    inserted = updated = 0
    for statement in (explicit, derived):
        new, changed = conn.execute(statement).one()
        inserted += new
        updated += changed
    return TableCounts(target.name, inserted, updated, len(frame) - inserted - updated)


def _staging_table(conn: sa.Connection, target: sa.Table) -> sa.Table:
    """A temporary copy of ``target``'s columns plus the source line, dropped at commit."""
    stage = sa.Table(
        f"stage_{target.name}",
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in target.columns),
        sa.Column("line", sa.BigInteger, nullable=False),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    stage.create(conn)
    return stage


def _upsert(
    target: sa.Table,
    stage: sa.Table,
    columns: list[str],
    rows: sa.ColumnElement[bool],
    keys: list[str],
    update: list[str] | None,
) -> sa.Select:
    """INSERT the selected staged rows; update changed ones (or leave existing ones when
    ``update`` is None). Returns a SELECT of (inserted, updated) counts."""
    statement = insert(target).from_select(
        columns, sa.select(*(stage.c[c] for c in columns)).where(rows)
    )
    if update:
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={c: excluded[c] for c in update},
            where=sa.tuple_(*(target.c[c] for c in update)).is_distinct_from(
                sa.tuple_(*(excluded[c] for c in update))
            ),
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    # xmax is 0 for a freshly inserted row and non-zero for one updated in place.
    written = statement.returning(sa.literal_column("xmax = 0").label("fresh")).cte("written")
    return sa.select(
        sa.func.count().filter(written.c.fresh),
        sa.func.count().filter(sa.not_(written.c.fresh)),
    )
