"""ACCESS EXCLUSIVE on several tables at once without deadlocking their readers.

A query reading two tables holds its lock on one while it waits for the other. Locking one table
after another, waiting each time, deadlocks with such a reader, and PostgreSQL resolves that by
cancelling the reader's query. So all the tables are asked for in one statement, each attempt
waiting at most :data:`LOCK_SLICE_MS`; a failed attempt gives back what it got (savepoint) and is
retried, until the session's ``lock_timeout`` is spent.
"""

import random
import time
from collections.abc import Sequence
from typing import Literal

import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys.storage.bulk import driver_connection, schema_of

#: Longest single wait for the exclusive locks: below PostgreSQL's default ``deadlock_timeout``
#: (1 s), so this side gives way before a reader is cancelled as a deadlock.
LOCK_SLICE_MS = 100


def lock_exclusively(
    conn: sa.Connection,
    tables: Sequence[sa.Table | str],
    mode: Literal["ACCESS EXCLUSIVE", "ROW EXCLUSIVE"] = "ACCESS EXCLUSIVE",
) -> None:
    """ACCESS EXCLUSIVE (or ``mode``) on ``tables`` (tables or views of the schema, by object or
    name; not their partitions, but a view's tables too), in the order given, until the
    transaction ends; raises LockNotAvailable once the session's lock timeout is spent."""
    cursor = driver_connection(conn).cursor()
    namespace = schema_of(conn)
    lock = sql.SQL("LOCK TABLE ONLY {} IN {} MODE").format(
        sql.SQL(", ").join(
            sql.Identifier(namespace, t if isinstance(t, str) else t.name) for t in tables
        ),
        sql.SQL(mode),
    )
    setting, budget_ms = conn.execute(
        sa.text(
            "SELECT current_setting('lock_timeout'), setting::int FROM pg_settings"
            " WHERE name = 'lock_timeout'"
        )
    ).one()
    deadline = time.monotonic() + budget_ms / 1000
    while True:
        cursor.execute("SAVEPOINT recsys_lock_exclusively")
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (f"{LOCK_SLICE_MS}ms",))
        try:
            cursor.execute(lock)
        except psycopg.errors.LockNotAvailable:
            cursor.execute("ROLLBACK TO SAVEPOINT recsys_lock_exclusively")
            if budget_ms and time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0, LOCK_SLICE_MS / 1000))  # let the readers through
            continue
        cursor.execute("RELEASE SAVEPOINT recsys_lock_exclusively")
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (setting,))
        return
