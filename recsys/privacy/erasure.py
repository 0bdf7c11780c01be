"""Erase users from everything recsys stores, and remember that it did without keeping the id.

``forget`` deletes a user's ratings and user row and their rows in the user embeddings and
recommendations of every run table, attached as a version's partition or not (a failed or
interrupted run's, a Ray run's prepared table), in one transaction: a reader's snapshot sees all
of the user or none. The output tables are locked first, all in one statement as a publish locks
them (:mod:`recsys.storage.locks`), in ROW EXCLUSIVE mode: readers go on, while a publish, which
needs ACCESS EXCLUSIVE to attach its tables, waits for the erasure to commit (and an erasure for
a publish), so the two never interleave. Each erased user gets a row in ``erasures``: when, the
rows deleted per table, and a salted SHA-256 of the id; erasing again an id that has nothing left
adds none, so a table of erasure requests can drive ``forget`` every night.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from psycopg import sql

from recsys.storage import schema
from recsys.storage.bulk import driver_connection, schema_of
from recsys.storage.locks import lock_exclusively
from recsys.versions.publish import LOCK_ORDER

#: Run tables (``<output>_r<run id>``) that hold rows per user.
_USER_RUN_TABLE = re.compile(r"^(user_embeddings|recommendations)_r[0-9]+$")


def user_hash(conn: sa.Connection, user_id: sql.Composable) -> sql.Composable:
    """SQL for the salted hash of the bigint ``user_id`` (the salt of migration 0007)."""
    salt = sql.SQL("(SELECT salt FROM {})").format(
        sql.Identifier(schema_of(conn), schema.erasure_salt.name)
    )
    return sql.SQL("encode(sha256({} || int8send({})), 'hex')").format(salt, user_id)


def erased_among(conn: sa.Connection, stage: str) -> int:
    """How many users in the temporary table ``stage`` (a ``user_id`` column) were erased."""
    erasures = sql.Identifier(schema_of(conn), schema.erasures.name)
    cursor = driver_connection(conn).cursor()
    if cursor.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(erasures)).fetchone()[0]:
        return 0
    hashed = user_hash(conn, sql.SQL("CAST(s.user_id AS bigint)"))
    query = sql.SQL(
        "SELECT count(DISTINCT s.user_id) FROM {} s WHERE {} IN (SELECT user_hash FROM {})"
    ).format(sql.Identifier(stage), hashed, erasures)
    return cursor.execute(query).fetchone()[0]


def user_tables(conn: sa.Connection) -> list[str]:
    """Every table of the schema that holds rows per user: ``ratings``, ``users``, and each run
    table of user embeddings and recommendations (ratings first: they reference users)."""
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :schema AND c.relkind = 'r' ORDER BY c.relname"
        ),
        {"schema": schema_of(conn)},
    ).scalars()
    runs = [name for name in names if _USER_RUN_TABLE.match(name)]
    return [schema.ratings.name, schema.users.name, *runs]


def forget(conn: sa.Connection, ids: str) -> dict[str, int]:
    """Erase the users in the temporary table ``ids`` (a ``user_id`` column, one row each) and
    audit each; returns the rows deleted per table, in total. Runs in ``conn``'s transaction."""
    lock_exclusively(conn, [*LOCK_ORDER, schema.ratings, schema.users], mode="ROW EXCLUSIVE")
    namespace = schema_of(conn)
    cursor = driver_connection(conn).cursor()
    cursor.execute(
        "CREATE TEMPORARY TABLE erased (tbl text, user_id bigint, n bigint) ON COMMIT DROP"
    )
    totals = {}
    for table in user_tables(conn):
        deleted = sql.SQL(
            "WITH d AS (DELETE FROM {t} x USING {ids} i WHERE x.user_id = i.user_id"
            " RETURNING x.user_id)"
            " INSERT INTO erased SELECT {name}, user_id, count(*) FROM d GROUP BY user_id"
        ).format(
            t=sql.Identifier(namespace, table), ids=sql.Identifier(ids), name=sql.Literal(table)
        )
        cursor.execute(deleted)
        totals[table] = cursor.execute(
            "SELECT coalesce(sum(n), 0)::bigint FROM erased WHERE tbl = %s", (table,)
        ).fetchone()[0]
    cursor.execute(
        sql.SQL(
            "INSERT INTO {audit} (user_hash, rows)"
            " SELECT {hashed}, coalesce(jsonb_object_agg(e.tbl, e.n)"
            "  FILTER (WHERE e.tbl IS NOT NULL), '{{}}')"
            " FROM {ids} i LEFT JOIN erased e ON e.user_id = i.user_id GROUP BY i.user_id"
            # An id erased before with nothing to delete now (a request seen again) adds no row.
            " HAVING count(e.tbl) > 0 OR {hashed} NOT IN (SELECT user_hash FROM {audit})"
        ).format(
            audit=sql.Identifier(namespace, schema.erasures.name),
            hashed=user_hash(conn, sql.SQL("i.user_id")),
            ids=sql.Identifier(ids),
        )
    )
    return totals


def live_runs(conn: sa.Connection) -> Sequence[str]:
    """Versions with a run in progress: one that read its ratings before an erasure may publish
    the user again afterwards."""
    runs = schema.version_runs
    return (
        conn.execute(
            sa.select(runs.c.version).where(runs.c.status == "running").order_by(runs.c.version)
        )
        .scalars()
        .all()
    )
