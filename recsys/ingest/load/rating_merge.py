"""Merge the staged ratings into ``ratings``: the step that decides how fast a large ingest is.

Three ways, by the size of the load against the table (1M rows measured on this machine):

- ``checked``, for small loads: an upsert with the foreign keys in place. PostgreSQL checks them
  row by row, about 7 µs a row (1M rows: 10.9 s against 4.1 s without them), and no lock it takes
  stops readers.
- ``unchecked``, for a large load into a table that has rows: the foreign keys are dropped, the
  rows upserted, and the keys added back, which checks them with one join over the table
  (0.3 s for 1M rows).
- ``rebuild``, for a large load into an empty table: the primary key and the indexes go too;
  the rows are inserted and the indexes built again by sorting, several times faster than
  inserting into B-trees row by row (1M rows: 0.6 s + 0.9 s against 4.1 s).

Constraints and indexes come back from the definitions the catalogue gave before they were
dropped, and are built and validated before the commit: a committed ingest leaves them in place
and valid, and a load that breaks one commits nothing. Dropping them needs ACCESS EXCLUSIVE on
``ratings`` and the two tables its foreign keys reference, so the large ways make readers of
those tables wait until the ingest commits; the owner of the tables alone may alter them, so
another role always takes the checked way.

Repeats of a (user, movie) pair within a load make the merge fail (two rows for one key); the
merge then looks for them: a repeat with other values is bad input, named by file, line and
value; exact repeats are dropped and the merge runs again.
"""

from typing import Literal

import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys.ingest.load.staging import StagedRatings
from recsys.ingest.load.upsert import TableCounts, upsert
from recsys.ingest.parse import validate
from recsys.storage import schema
from recsys.storage.bulk import driver_connection, schema_of
from recsys.storage.locks import lock_exclusively

Way = Literal["checked", "unchecked", "rebuild"]

#: Loads from this many rows take one of the ways that drop constraints...
LARGE_LOAD = 100_000
#: ...unless the table holds this many times more rows, all of which re-checking would read.
_TABLE_TO_LOAD = 8
#: Memory for building the primary key and indexes again and for the joins that check the
#: foreign keys (the server's defaults are 64 MB and 4 MB, which send 20M rows to disk).
_BUILD_MEMORY = "512MB"
_REPEAT_ERRORS = (psycopg.errors.UniqueViolation, psycopg.errors.CardinalityViolation)
_VALUES = [c.name for c in schema.ratings.columns if not c.primary_key]


def merge_ratings(
    conn: sa.Connection, staged: StagedRatings, source: str, large_load: int = LARGE_LOAD
) -> TableCounts:
    """Merge ``staged`` into ``ratings``; ``source`` names the ratings file in messages."""
    way = choose_way(conn, staged.rows, large_load)
    repeats = 0
    try:
        with conn.begin_nested():
            inserted, updated = _merge(conn, staged.table, way, deduplicate=False)
    except sa.exc.DBAPIError as exc:
        if not isinstance(exc.orig, _REPEAT_ERRORS):
            raise
        repeats = _repeats(conn, staged.table, source)
        inserted, updated = _merge(conn, staged.table, way, deduplicate=True)
    unchanged = staged.rows - repeats - inserted - updated
    return TableCounts(schema.ratings.name, inserted, updated, unchanged)


def choose_way(conn: sa.Connection, rows: int, large_load: int) -> Way:
    """Which way to merge ``rows`` staged ratings; a large way locks the tables it alters."""
    ratings = schema.ratings
    owned, estimate = conn.execute(
        sa.text(
            "SELECT pg_has_role(current_user, c.relowner, 'USAGE'), greatest(c.reltuples, 0)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :schema AND c.relname = :table"
        ),
        {"schema": schema_of(conn), "table": ratings.name},
    ).one()
    if rows < large_load or not owned or rows * _TABLE_TO_LOAD < estimate:
        return "checked"
    lock_exclusively(conn, (ratings, schema.users, schema.movies))
    empty = conn.execute(sa.select(~sa.exists(sa.select(ratings.c.user_id)))).scalar_one()
    return "rebuild" if empty else "unchecked"


def _merge(conn: sa.Connection, stage: sa.Table, way: Way, deduplicate: bool) -> tuple[int, int]:
    """(inserted, updated) by ``way``; with ``deduplicate``, the first of repeated rows only."""
    ratings = schema.ratings
    source = _source(stage, deduplicate)
    if way == "checked":
        inserted, updated = conn.execute(upsert(ratings, source, _VALUES)).one()
        return inserted, updated
    dropped = _definitions(conn, foreign_keys_only=way == "unchecked")
    _drop(conn, dropped)
    if way == "rebuild":
        insert = sa.insert(ratings).from_select([c.name for c in ratings.columns], source)
        written = conn.execute(insert.execution_options(preserve_rowcount=True))
        inserted, updated = written.rowcount, 0
    else:
        inserted, updated = conn.execute(upsert(ratings, source, _VALUES)).one()
    _restore(conn, dropped)
    return inserted, updated


def _drop(conn: sa.Connection, dropped: list[tuple[str, str, str]]) -> None:
    namespace = schema_of(conn)
    for name, _, kind in dropped:
        if kind == "index":
            _execute(conn, sql.SQL("DROP INDEX {}").format(sql.Identifier(namespace, name)))
        else:
            _execute(
                conn,
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(namespace, schema.ratings.name), sql.Identifier(name)
                ),
            )


def _restore(conn: sa.Connection, dropped: list[tuple[str, str, str]]) -> None:
    """Build what :func:`_drop` dropped, in reverse: the primary key and indexes by sorting,
    then each foreign key, which validates every row before it is added."""
    for setting in ("maintenance_work_mem", "work_mem"):
        _execute(conn, sql.SQL("SET LOCAL {} = {}").format(sql.SQL(setting), _BUILD_MEMORY))
    table = sql.Identifier(schema_of(conn), schema.ratings.name)
    for name, definition, kind in reversed(dropped):
        if kind == "index":
            _execute(conn, sql.SQL(definition))
        else:
            _execute(
                conn,
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    table, sql.Identifier(name), sql.SQL(definition)
                ),
            )


def _execute(conn: sa.Connection, statement: sql.Composable) -> None:
    """Run a statement composed with psycopg.sql through SQLAlchemy, which wraps its errors
    (a key repeated while the primary key is built is an IntegrityError, as in an upsert)."""
    conn.exec_driver_sql(statement.as_string(driver_connection(conn)))


def _source(stage: sa.Table, deduplicate: bool) -> sa.Select:
    """The staged rows in ``ratings``' columns, stand-ins turned back into NULL."""
    rating = sa.func.nullif(stage.c.rating, sa.literal_column("'NaN'::float8"))
    rated_at = sa.func.nullif(stage.c.rated_at, sa.literal_column("'-infinity'::timestamptz"))
    source = sa.select(
        stage.c.user_id,
        stage.c.movie_id,
        sa.cast(rating, sa.REAL).label("rating"),
        rated_at.label("rated_at"),
    )
    if deduplicate:
        key = (stage.c.user_id, stage.c.movie_id)
        order = sa.func.row_number().over(partition_by=key, order_by=stage.c.line)
        numbered = source.add_columns(order.label("n")).subquery()
        source = sa.select(*(numbered.c[c.name] for c in schema.ratings.columns))
        source = source.where(numbered.c.n == 1)
    return source


def _definitions(conn: sa.Connection, foreign_keys_only: bool) -> list[tuple[str, str, str]]:
    """(name, definition, kind) of what a large way drops from ``ratings``, in the order to drop
    it: the foreign keys, then (unless ``foreign_keys_only``) the primary key and the other
    indexes. Kind is "foreign key", "primary key" or "index"; definitions are the catalogue's."""
    found = conn.execute(
        sa.text(
            "WITH t AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n"
            "  ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relname = :table)"
            " SELECT conname, pg_get_constraintdef(k.oid),"
            "  CASE contype WHEN 'f' THEN 'foreign key' ELSE 'primary key' END"
            " FROM pg_constraint k, t WHERE k.conrelid = t.oid AND contype IN ('f', 'p')"
            " UNION ALL"
            " SELECT i.relname, pg_get_indexdef(i.oid), 'index'"
            " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid, t"
            " WHERE x.indrelid = t.oid"
            "  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)"
        ),
        {"schema": schema_of(conn), "table": schema.ratings.name},
    ).all()
    order = {"foreign key": 0, "primary key": 1, "index": 2}
    kept = [tuple(row) for row in found if not foreign_keys_only or row[2] == "foreign key"]
    return sorted(kept, key=lambda row: (order[row[2]], row[0]))


def _repeats(conn: sa.Connection, stage: sa.Table, source: str) -> int:
    """How many staged rows repeat an earlier row's (user, movie); raises InputError at the first
    repeat whose rating or time differs from the pair's first row."""
    window = {"partition_by": (stage.c.user_id, stage.c.movie_id), "order_by": stage.c.line}
    first = {c: sa.func.first_value(stage.c[c]).over(**window) for c in ("line", *_VALUES)}
    marked = sa.select(
        stage.c.line,
        stage.c.user_id,
        stage.c.movie_id,
        first["line"].label("first_line"),
        sa.tuple_(*(stage.c[c] for c in _VALUES))
        .is_distinct_from(sa.tuple_(*(first[c] for c in _VALUES)))
        .label("differs"),
    ).cte("marked")
    clash = conn.execute(
        sa.select(marked.c.line, marked.c.user_id, marked.c.movie_id, marked.c.first_line)
        .where(marked.c.differs)
        .order_by(marked.c.line)
        .limit(1)
    ).one_or_none()
    if clash is not None:
        line, user_id, movie_id, first_line = clash
        raise validate.repeat_error(
            validate.RATING_KEY, first_line, source, line, (user_id, movie_id)
        )
    return conn.execute(
        sa.select(sa.func.count()).where(marked.c.line != marked.c.first_line)
    ).scalar_one()
