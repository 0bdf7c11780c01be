"""``ingest sql``: users, movies and ratings from the user's tables, views or SELECTs.

Three transactions on one session. The first two are read-only where the user's SQL runs
(:mod:`recsys.ingest.sql.source`): one describes each source, one copies its rows into
temporary tables with ``INSERT … SELECT`` (with ``--source-url``, the SQL runs in read-only
transactions of a session on the other database, and the rows are streamed across by binary
COPY). The third checks the staged values as ``ingest csv`` checks a file's, merges them as
``ingest csv`` does (:mod:`recsys.ingest.load.upsert`, :mod:`recsys.ingest.load.rating_merge`), and,
in the same commit, deletes what a ``--mirror`` source lost and advances a ``--since-last``
watermark.
Nothing but temporary tables is written before that last commit, so a failure anywhere leaves
the database as it was; the session is then discarded, and its temporary tables with it.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql as pg

from recsys.ingest.errors import InputError
from recsys.ingest.load.parsed import IngestReport
from recsys.ingest.load.rating_merge import LARGE_LOAD, merge_ratings
from recsys.ingest.load.staging import StagedRatings, staging_table
from recsys.ingest.load.upsert import TableCounts, merge_staged
from recsys.ingest.sql import checks, watermark
from recsys.ingest.sql.columns import FIELDS, Field, Mapping, mapping
from recsys.ingest.sql.source import (
    SourceSpec,
    SqlSource,
    describe,
    execute,
    read_only,
    user_sql,
)
from recsys.privacy import erasure
from recsys.storage import database, schema
from recsys.storage.bulk import driver_connection, schema_of

#: The year written in a title, as ``ingest csv`` finds it (recsys.ingest.parse.movie_fields).
_TITLE_YEAR = r".*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)"


@dataclass(frozen=True)
class Increment:
    """``--since-last`` (with the watermark column, None for the time column) and ``--mirror``."""

    since_last: bool = False
    column: str | None = None
    mirror: bool = False


@dataclass(frozen=True)
class SqlReport:
    report: IngestReport
    #: Ratings ``--mirror`` deleted (None without it).
    mirrored: int | None
    #: The watermark before and after (``--since-last`` only).
    watermark: tuple[str | None, str | None] | None


def load_sql(
    engine: sa.Engine,
    sources: list[SourceSpec],
    increment: Increment,
    large_load: int = LARGE_LOAD,
    source_engine: sa.Engine | None = None,
) -> SqlReport:
    """Ingest ``sources`` (ratings, and movies or users if given) all or nothing; see the
    module docstring. With ``source_engine`` the sources are read from that database and their
    rows streamed across by binary COPY (:func:`_copy_across`)."""
    if increment.since_last and increment.mirror:
        raise InputError(
            "--mirror needs every row of the source, --since-last reads only new ones; "
            "give one of them"
        )
    with engine.connect() as conn, _reader(source_engine, conn) as reader:
        try:
            return _load(conn, reader, sources, increment, large_load)
        except BaseException:
            conn.invalidate()  # the temporary tables and the source's lock go with the session
            raise


@contextmanager
def _reader(source_engine: sa.Engine | None, conn: sa.Connection) -> Iterator[sa.Connection]:
    """Where the sources are read: another database's connection, or ``conn`` itself."""
    if source_engine is None:
        yield conn
        return
    with source_engine.connect() as reader:
        yield reader


def _load(
    conn: sa.Connection,
    reader: sa.Connection,
    sources: list[SourceSpec],
    increment: Increment,
    large_load: int,
) -> SqlReport:
    started = time.perf_counter()
    origin = "" if reader is conn else database.masked(reader.engine.url)
    present = {spec.kind: spec.resolve(reader, origin) for spec in sources}
    described = {kind: describe(reader, source) for kind, source in present.items()}
    mark = _watermark(conn, present["ratings"], described["ratings"], increment)
    extra = mark.column if mark else None
    mappings = {
        kind: mapping(kind, present[kind].label, columns, extra if kind == "ratings" else None)
        for kind, columns in described.items()
    }
    staged = _stage(conn, reader, present, mappings, mark)
    with conn.begin():
        for kind, mapped in mappings.items():
            checks.check_values(conn, kind, mapped, _raw_table(kind))
        counts = (
            _merge_catalogue(conn, "movies", mappings),
            _merge_catalogue(conn, "users", mappings),
            merge_ratings(
                conn,
                StagedRatings(_RATINGS_STAGE, staged, None, None),
                present["ratings"].label,
                large_load,
            ),
        )
        mirrored = _mirror(conn) if increment.mirror else None
        moved = None
        if mark is not None:
            moved = (mark.last, _advance(conn, mark, staged))
        erased = erasure.erased_among(conn, "stage_users")
        _drop_staged(conn, mappings)
    report = IngestReport("sql", counts, time.perf_counter() - started, erased)
    if mark is not None:
        with conn.begin():
            watermark.unlock_source(conn, mark.key)
    return SqlReport(report, mirrored, moved)


def _watermark(
    conn: sa.Connection, source: SqlSource, columns: list, increment: Increment
) -> watermark.Watermark | None:
    """The source's watermark for ``--since-last``, its lock taken; None without it."""
    if not increment.since_last:
        return None
    by_name = {c.name: c for c in columns}
    name = increment.column
    if name is None:
        times = [n for n in ("timestamp", "rated_at") if n in by_name]
        if not times:
            raise InputError(
                "--since-last needs a time column (timestamp or rated_at) or --watermark COLUMN",
                source.label,
            )
        name = times[0]
    if name not in by_name:
        raise InputError("no such watermark column", source.label, value=name)
    key = source.key(name)
    with conn.begin():
        watermark.lock_source(conn, key)
        last = watermark.stored(conn, key)
    return watermark.Watermark(key, source.text, name, by_name[name].type_name, last)


def _advance(conn: sa.Connection, mark: watermark.Watermark, rows: int) -> str | None:
    """Store the largest watermark value read; the old one stands when no row was read."""
    if rows == 0:
        return mark.last
    value = conn.execute(sa.text("SELECT max(watermark)::text FROM stage_ratings")).scalar_one()
    watermark.advance(conn, mark, value, rows)
    return value


# --- staging: the user's SQL, read-only --------------------------------------------------------

_RAW_TYPES = {"rating": "float8", "time": "timestamptz", "text": "text", "genres": "text[]"}
_RATINGS_STAGE = sa.Table(
    "stage_ratings",
    sa.MetaData(),
    sa.Column("user_id", sa.BigInteger),
    sa.Column("movie_id", sa.BigInteger),
    sa.Column("rating", sa.Float(53)),
    sa.Column("rated_at", pg.TIMESTAMP(timezone=True)),
    sa.Column("line", sa.BigInteger),
)


def _raw_table(kind: str) -> str:
    """Where a source's rows are staged as read: ratings go to the merge's staging table."""
    return "stage_ratings" if kind == "ratings" else f"source_{kind}"


def _stage(
    conn: sa.Connection,
    reader: sa.Connection,
    sources: dict[str, SqlSource],
    mappings: dict[str, Mapping],
    mark: watermark.Watermark | None,
) -> int:
    """Copy every source's rows into its temporary table in one read-only transaction (and, for
    another database, one read-only transaction there); returns the number of ratings staged."""
    with conn.begin():
        cursor = driver_connection(conn).cursor()
        fields = {kind: [f for f in FIELDS[kind] if m.has(f.name)] for kind, m in mappings.items()}
        for kind, present in fields.items():
            columns = [
                sql.SQL("{} {}").format(sql.Identifier(f.name), _raw_type(f, mappings[kind]))
                for f in present
            ]
            columns.append(sql.SQL("line bigint NOT NULL"))
            if kind == "ratings":
                columns += [
                    sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind_type))
                    for name, kind_type in (("rating", "float8"), ("rated_at", "timestamptz"))
                    if not mappings[kind].has(name)
                ]
                if mark is not None:
                    columns.append(sql.SQL("watermark {}").format(sql.SQL(mark.type_name)))
            cursor.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT PRESERVE ROWS").format(
                    sql.Identifier(_raw_table(kind)), sql.SQL(", ").join(columns)
                )
            )
        cursor.execute("SET TRANSACTION READ ONLY")
        ratings = 0
        for kind, present in fields.items():
            names = [sql.Identifier(f.name) for f in present] + [sql.Identifier("line")]
            values = [mappings[kind].staged(f) for f in present]
            values.append(sql.SQL("row_number() OVER ()"))
            where = sql.SQL("")
            if kind == "ratings" and mark is not None:
                names.append(sql.Identifier("watermark"))
                values.append(sql.Identifier("s", mark.column))
                if mark.last is not None:
                    # A literal, not a parameter: COPY (…) TO STDOUT takes none.
                    where = sql.SQL(" WHERE {} > CAST({} AS {})").format(
                        sql.Identifier("s", mark.column),
                        sql.Literal(mark.last),
                        sql.SQL(mark.type_name),
                    )
            select = sql.SQL("SELECT {} FROM {}{}").format(
                sql.SQL(", ").join(values), sources[kind].as_subquery(), where
            )
            target = sql.SQL("{} ({})").format(
                sql.Identifier(_raw_table(kind)), sql.SQL(", ").join(names)
            )
            if reader is conn:
                statement = sql.SQL("INSERT INTO {} {}").format(target, select)
                execute(cursor, statement, sources[kind])
                rows = cursor.rowcount
            else:
                rows = _copy_across(reader, cursor, select, target, sources[kind])
            if kind == "ratings":
                ratings = rows
        return ratings


def _copy_across(
    reader: sa.Connection,
    cursor: psycopg.Cursor,
    select: sql.Composable,
    target: sql.Composable,
    source: SqlSource,
) -> int:
    """Stream ``select``'s rows from the other database into ``target`` by binary COPY, a
    message at a time, so memory stays at a COPY buffer's whatever the row count. The staged
    columns have the types the select gives (the source's or the conversions'), which binary
    COPY needs. ``describe`` ran the source through the extended protocol already, so its text
    is one statement; the read-only transaction keeps it from writing there."""

    def stream(source_cursor: psycopg.Cursor) -> int:
        out = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(select)
        into = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(target)
        with user_sql(source), source_cursor.copy(out) as rows_out, cursor.copy(into) as rows_in:
            for data in rows_out:
                rows_in.write(data)
        return cursor.rowcount

    return read_only(reader, stream)


def _raw_type(field: Field, mapped: Mapping) -> sql.Composable:
    """Ids and whole numbers keep the source's type until checked; the rest are converted."""
    if field.kind in ("id", "whole"):
        return sql.SQL(mapped.columns[field.name].type_name)
    return sql.SQL(_RAW_TYPES[field.kind])


# --- merging -------------------------------------------------------------------------------


def _merge_catalogue(conn: sa.Connection, kind: str, mappings: dict[str, Mapping]) -> TableCounts:
    """Stage the movies or users typed as their table, from the source or as placeholders for
    the ids the ratings name, and upsert them as ``ingest csv`` does."""
    mapped = mappings.get(kind)
    target = schema.movies if kind == "movies" else schema.users
    key = target.primary_key.columns.keys()[0]
    columns = [sa.Column(c.name, c.type) for c in target.columns]
    stage = staging_table(conn, f"stage_{kind}", [*columns, sa.Column("line", sa.BigInteger)])
    if mapped is None:
        rows = _placeholders(conn, kind, key)
    else:
        _check_repeats(conn, kind, mapped, key)
        _check_known(conn, kind, mapped, mappings["ratings"], key)
        rows = _typed(conn, kind, mapped, key)
    return merge_staged(conn, target, stage, rows)


def _placeholders(conn: sa.Connection, kind: str, key: str) -> int:
    """Users without attributes, movies titled "Item <id>": derived rows (``line`` 0)."""
    if kind == "movies":
        values = "movie_id, 'Item ' || movie_id, '{}'::text[], NULL::smallint, 0"
        names = "movie_id, title, genres, year, line"
    else:
        values, names = "user_id, 0", "user_id, line"
    statement = (
        f"INSERT INTO stage_{kind} ({names}) SELECT {values}"
        f" FROM (SELECT DISTINCT CAST({key} AS bigint) AS {key} FROM stage_ratings) r"
    )
    return driver_connection(conn).cursor().execute(statement).rowcount


def _typed(conn: sa.Connection, kind: str, mapped: Mapping, key: str) -> int:
    """The source's rows in the table's types, one per id (the first, exact repeats dropped)."""
    fields = [f for f in FIELDS[kind] if mapped.has(f.name)]
    names = [f.name for f in fields]
    values = [sql.SQL("CAST({} AS bigint)").format(sql.Identifier(key))]
    values += [sql.Identifier(f.name) for f in fields if f.name != key]
    if kind == "movies":
        if "genres" not in names:
            names.append("genres")
            values.append(sql.SQL("'{}'::text[]"))
        else:
            values[names.index("genres")] = sql.SQL("coalesce(genres, '{}')")
        if "year" not in names:
            names.append("year")
            values.append(
                sql.SQL("CAST(substring(title from {}) AS smallint)").format(
                    sql.Literal(_TITLE_YEAR)
                )
            )
    statement = sql.SQL(
        "INSERT INTO {stage} ({names}, line) SELECT DISTINCT ON ({key}) {values}, line"
        " FROM {raw} ORDER BY {key}, line"
    ).format(
        stage=sql.Identifier(f"stage_{kind}"),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        key=sql.Identifier(key),
        values=sql.SQL(", ").join(values),
        raw=sql.Identifier(_raw_table(kind)),
    )
    return driver_connection(conn).cursor().execute(statement).rowcount


def _check_repeats(conn: sa.Connection, kind: str, mapped: Mapping, key: str) -> None:
    """An id given twice with other values is bad input, as in a file."""
    columns = sql.SQL(", ").join(sql.Identifier(f.name) for f in FIELDS[kind] if mapped.has(f.name))
    statement = sql.SQL(
        "SELECT {key}::text FROM (SELECT DISTINCT {columns} FROM {raw}) d"
        " GROUP BY {key} HAVING count(*) > 1 ORDER BY min(d.{key}) LIMIT 1"
    ).format(key=sql.Identifier(key), columns=columns, raw=sql.Identifier(_raw_table(kind)))
    row = driver_connection(conn).cursor().execute(statement).fetchone()
    if row is not None:
        raise checks.row_error(mapped, (key,), row, "given again with different values")


def _check_known(
    conn: sa.Connection, kind: str, mapped: Mapping, ratings: Mapping, key: str
) -> None:
    """Every rating's movie and user must be among the movies and users given."""
    statement = sql.SQL(
        "SELECT user_id::text, movie_id::text FROM stage_ratings r WHERE NOT EXISTS"
        " (SELECT FROM {raw} c WHERE c.{key} = r.{key}) ORDER BY line LIMIT 1"
    ).format(raw=sql.Identifier(_raw_table(kind)), key=sql.Identifier(key))
    row = driver_connection(conn).cursor().execute(statement).fetchone()
    if row is not None:
        what, value = ("user", row[0]) if kind == "users" else ("movie", row[1])
        keys = checks.KEYS["ratings"]
        raise checks.row_error(ratings, keys, row, f"{what} {value} is not in {mapped.label}")


def _mirror(conn: sa.Connection) -> int:
    """Delete the ratings of the source's users that the source no longer has."""
    statement = sql.SQL(
        "WITH gone AS (DELETE FROM {ratings} r"
        " WHERE r.user_id IN (SELECT CAST(user_id AS bigint) FROM stage_ratings)"
        " AND NOT EXISTS (SELECT FROM stage_ratings s"
        "  WHERE s.user_id = r.user_id AND s.movie_id = r.movie_id) RETURNING 1)"
        " SELECT count(*) FROM gone"
    ).format(ratings=sql.Identifier(schema_of(conn), schema.ratings.name))
    return driver_connection(conn).cursor().execute(statement).fetchone()[0]


def _drop_staged(conn: sa.Connection, mappings: dict[str, Mapping]) -> None:
    cursor = driver_connection(conn).cursor()
    for kind in mappings:
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(_raw_table(kind))))
