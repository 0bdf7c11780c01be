"""INSERT … ON CONFLICT from staged rows, counting what it inserted and what it changed.

The upsert only touches rows whose values differ, which makes re-ingesting the same files a
no-op that reports every row as unchanged. Rows the parser derived (``line == 0``: users seen
only in ratings, placeholder movies) never overwrite what is already stored.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from recsys.ingest.load.staging import stage_frame


@dataclass(frozen=True)
class TableCounts:
    table: str
    inserted: int
    updated: int
    unchanged: int

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged


def upsert(target: sa.Table, source: sa.Select, update: list[str] | None) -> sa.Select:
    """INSERT ``source`` (rows of all of ``target``'s columns, in order) into ``target``; update
    the changed columns ``update`` of rows already there, or leave those rows be when ``update``
    is None. Returns a SELECT of the (inserted, updated) counts."""
    keys = [c.name for c in target.primary_key.columns]
    statement = insert(target).from_select([c.name for c in target.columns], source)
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


def merge_frame(
    conn: sa.Connection,
    target: sa.Table,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None = None,
) -> TableCounts:
    """Stage a movies or users frame and upsert it (:func:`merge_staged`)."""
    return merge_staged(conn, target, stage_frame(conn, target, frame, progress), len(frame))


def merge_staged(conn: sa.Connection, target: sa.Table, stage: sa.Table, rows: int) -> TableCounts:
    """Upsert the ``rows`` movies or users of ``stage`` (``target``'s columns plus ``line``):
    rows from an input update what differs, derived rows (``line`` 0) only fill in ids not
    there yet."""
    columns = [stage.c[c.name] for c in target.columns]
    values = [c.name for c in target.columns if not c.primary_key]
    inserted = updated = 0
    for selected, update in ((stage.c.line > 0, values), (stage.c.line == 0, None)):
        query = upsert(target, sa.select(*columns).where(selected), update)
        new, changed = conn.execute(query).one()
        inserted += new
        updated += changed
    return TableCounts(target.name, inserted, updated, rows - inserted - updated)
