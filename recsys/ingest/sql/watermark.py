"""Where the last successful ``ingest sql --since-last`` from a source stopped.

The watermark is the largest value of the watermark column among the rows an ingest read, kept as
text and compared in the column's own type. It is written in the ingest's transaction: an ingest
that fails leaves it where it was, so the next one reads the same rows again.
"""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from recsys.storage import schema


@dataclass(frozen=True)
class Watermark:
    key: str
    source: str
    column: str
    type_name: str
    #: The stored value, or None before the first ingest from the source.
    last: str | None


def stored(conn: sa.Connection, key: str) -> str | None:
    """The watermark of ``key``: callers hold the source's lock (:func:`lock_source`)."""
    table = schema.ingest_watermarks
    return conn.execute(sa.select(table.c.watermark).where(table.c.source_key == key)).scalar()


def lock_source(conn: sa.Connection, key: str) -> None:
    """A session lock on the source, so two ingests from it cannot read the same watermark and
    both load the rows past it; released when the session ends or :func:`unlock_source`."""
    conn.execute(sa.select(sa.func.pg_advisory_lock(sa.func.hashtextextended(key, 0))))


def unlock_source(conn: sa.Connection, key: str) -> None:
    conn.execute(sa.select(sa.func.pg_advisory_unlock(sa.func.hashtextextended(key, 0))))


def advance(conn: sa.Connection, mark: Watermark, value: str, rows: int) -> None:
    """Store ``value`` as ``mark``'s watermark after reading ``rows`` rows past the last one."""
    table = schema.ingest_watermarks
    row = {
        "source_key": mark.key,
        "source": mark.source,
        "watermark_column": mark.column,
        "watermark": value,
        "rows_read": rows,
        "ingested_at": sa.func.now(),
    }
    statement = insert(table).values(row)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.source_key],
            set_={k: statement.excluded[k] for k in row if k != "source_key"},
        )
    )
