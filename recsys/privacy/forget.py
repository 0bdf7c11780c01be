"""``forget``: which users to erase (ids given, or a query's ``user_id`` column), then erase them.

The query runs as ``ingest sql``'s sources do, read-only (:mod:`recsys.ingest.sql.source`), into
a temporary table; the erasure itself is :func:`recsys.privacy.erasure.forget`, in one
transaction with the audit rows.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg import sql

from recsys.faults import checkpoint
from recsys.ingest.errors import InputError
from recsys.ingest.sql.source import describe, execute, from_query, read_only
from recsys.privacy import erasure
from recsys.storage.bulk import driver_connection


@dataclass(frozen=True)
class Erased:
    users: int
    #: Rows deleted per table (``ratings``, ``users``, each run table).
    rows: dict[str, int]
    #: Versions with a run in progress when the erasure committed.
    live: Sequence[str]


def forget_users(engine: sa.Engine, ids: Sequence[int], query: str | None) -> Erased:
    """Erase the users ``ids`` and those ``query`` returns, all in one transaction."""
    with engine.connect() as conn:
        try:
            return _forget(conn, ids, query)
        except BaseException:
            conn.invalidate()  # takes the temporary table with the session
            raise


def _forget(conn: sa.Connection, ids: Sequence[int], query: str | None) -> Erased:
    source = from_query("users to forget", query) if query is not None else None
    if source is not None:
        columns = {c.name: c for c in describe(conn, source)}
        column = columns.get("user_id")
        if column is None or column.category != "N":
            raise InputError(
                "needs a numeric user_id column", source.label, value=",".join(columns)
            )
    with conn.begin():
        cursor = driver_connection(conn).cursor()
        cursor.execute(
            "CREATE TEMPORARY TABLE forget_requested (user_id numeric) ON COMMIT PRESERVE ROWS"
        )
        if ids:
            cursor.execute("INSERT INTO forget_requested SELECT unnest(%s::bigint[])", (list(ids),))
    if source is not None:
        statement = sql.SQL("INSERT INTO forget_requested SELECT s.user_id FROM {}").format(
            source.as_subquery()
        )
        read_only(conn, lambda cursor: execute(cursor, statement, source))
    with conn.begin():
        cursor = driver_connection(conn).cursor()
        bad = cursor.execute(
            "SELECT user_id::text FROM forget_requested WHERE user_id IS NULL"
            " OR user_id <> trunc(user_id) OR user_id < 0 OR user_id > 9223372036854775807"
            " LIMIT 1"
        ).fetchone()
        if bad is not None:
            raise InputError("not a user id", "users to forget", value=bad[0] or "NULL")
        cursor.execute(
            "CREATE TEMPORARY TABLE forget_ids ON COMMIT DROP AS"
            " SELECT DISTINCT CAST(user_id AS bigint) AS user_id FROM forget_requested"
        )
        users = cursor.rowcount
        rows = erasure.forget(conn, "forget_ids")
        checkpoint("forget:commit")
        cursor.execute("DROP TABLE forget_requested")
    with conn.begin():
        live = erasure.live_runs(conn)
    return Erased(users, rows, live)
