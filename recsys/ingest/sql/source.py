"""A table, view or SELECT of the user's as an ingest source, read without the power to write.

The user's SQL runs only inside read-only transactions: one that describes it (``LIMIT 0``) and
one that copies its rows into temporary tables (PostgreSQL lets a read-only transaction write
those, and nothing else), as the connecting role and under its statement timeout. A query that
writes fails there, as does one calling a function that writes; a data-modifying ``WITH`` is
refused by being a subquery. Statements go by the extended protocol (psycopg's binary mode), which
takes one statement only, so text such as ``SELECT 1) s; COMMIT; DELETE ...`` cannot end the
read-only transaction either. The rows never pass through Python.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys.ingest.errors import InputError
from recsys.ingest.sql.columns import SourceColumn
from recsys.storage.bulk import driver_connection


@dataclass(frozen=True)
class SqlSource:
    """What to read: ``text`` is a SELECT (a table's is ``SELECT * FROM`` it); ``label`` names it
    in messages."""

    kind: str
    text: str
    label: str
    #: The other database it is read from (``--source-url``, password masked), or "".
    origin: str = ""

    def key(self, watermark_column: str) -> str:
        """Identifies the source and watermark column across runs (:mod:`watermark`)."""
        identity = f"{self.origin}\n{self.kind}\n{self.text}\n{watermark_column}"
        return hashlib.sha256(identity.encode()).hexdigest()

    def as_subquery(self) -> sql.Composable:
        return sql.SQL("({}) AS s").format(sql.SQL(self.text))


@dataclass(frozen=True)
class SourceSpec:
    """A source as given on the command line: a query, or the name of a table or view."""

    kind: str
    query: str | None = None
    table: str | None = None

    def resolve(self, conn: sa.Connection, origin: str = "") -> SqlSource:
        """The source read over ``conn`` (a connection to ``origin``, "" for recsys's own)."""
        if self.table is not None:
            source = from_table(conn, self.kind, self.table)
        else:
            source = from_query(self.kind, self.query or "")
        if not origin:
            return source
        return replace(source, label=f"{source.label} at {origin}", origin=origin)


def from_query(kind: str, query: str) -> SqlSource:
    text = query.strip().rstrip(";").strip()
    if not text:
        raise InputError("the query is empty", f"{kind} query")
    return SqlSource(kind, text, f"{kind} query")


def from_table(conn: sa.Connection, kind: str, name: str) -> SqlSource:
    """A table or view as the connecting role's search path resolves ``name``."""
    resolved = read_only(
        conn, lambda cursor: cursor.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()
    )
    if resolved is None or resolved[0] is None:
        raise InputError("no such table or view", f"{kind} table", value=name)
    return SqlSource(kind, f"SELECT * FROM {resolved[0]}", f"{kind} table {resolved[0]}")


def read_only(conn: sa.Connection, work: Any) -> Any:
    """Run ``work(cursor)`` in a transaction of its own made read-only first; commit it."""
    with conn.begin():
        cursor = driver_connection(conn).cursor()
        cursor.execute("SET TRANSACTION READ ONLY")
        return work(cursor)


def describe(conn: sa.Connection, source: SqlSource) -> list[SourceColumn]:
    """The source's columns, read from a ``LIMIT 0`` run in a read-only transaction."""

    def columns(cursor: psycopg.Cursor) -> list[SourceColumn]:
        statement = sql.SQL("SELECT * FROM {} LIMIT 0").format(source.as_subquery())
        execute(cursor, statement, source)
        described = [(c.name, c.type_code) for c in cursor.description or ()]
        oids = [oid for _, oid in described]
        types = dict(
            (oid, (name, category))
            for oid, name, category in cursor.execute(
                "SELECT oid::int, format_type(oid, NULL), typcategory FROM pg_type"
                " WHERE oid = ANY(%s)",
                (oids,),
            ).fetchall()
        )
        return [SourceColumn(name, *types[oid]) for name, oid in described]

    return read_only(conn, columns)


def execute(
    cursor: psycopg.Cursor,
    statement: sql.Composable,
    source: SqlSource,
    params: tuple[object, ...] = (),
) -> None:
    """Run a statement holding the user's SQL: one statement only (extended protocol)."""
    with user_sql(source):
        cursor.execute(statement, params, binary=True)


#: Failures of the user's SQL itself: bad input, not a broken database.
_USER_ERRORS = (
    psycopg.errors.SyntaxError,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.ReadOnlySqlTransaction,
    psycopg.errors.FeatureNotSupported,
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.DatatypeMismatch,
    psycopg.errors.InvalidTextRepresentation,
    psycopg.errors.NumericValueOutOfRange,
    psycopg.errors.DatetimeFieldOverflow,
)


@contextmanager
def user_sql(source: SqlSource) -> Iterator[None]:
    """A failure of the user's SQL becomes bad input naming the source, with PostgreSQL's
    reason (a write is refused as such)."""
    try:
        yield
    except _USER_ERRORS as exc:
        reason = exc.diag.message_primary or str(exc)
        if isinstance(
            exc, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.FeatureNotSupported
        ):
            reason = f"the query must only read ({reason})"
        raise InputError(reason, source.label) from None
