"""Write a run's outputs and make them visible, all in one transaction.

Each output goes into a table of its own (``<table>_r<run_id>``), created without indexes and
filled with COPY; publishing attaches those tables as the version's partitions (dropping the
replaced version's partitions first) and flips the registry row to ``published``. Until that
transaction commits nothing of the version is visible; if the process dies at any point before,
PostgreSQL rolls all of it back and leaves no tables behind.

Attaching takes SHARE UPDATE EXCLUSIVE on the output tables, which readers do not conflict with.
Dropping a partition (a replacement, or prune) takes ACCESS EXCLUSIVE on its parent; see
:func:`_lock_outputs` for how that is taken without deadlocking readers.
"""

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys import registry, schema
from recsys.bulk import copy_frame, driver_connection, schema_of
from recsys.faults import checkpoint

#: Longest single wait for the output tables' exclusive locks: below PostgreSQL's default
#: ``deadlock_timeout`` (1 s), so this side gives way before a reader is cancelled as a deadlock.
LOCK_SLICE_MS = 100


def partition_name(table: sa.Table, run_id: int) -> str:
    return f"{table.name}_r{run_id}"


def publish(
    engine: sa.Engine,
    claim: registry.Claim,
    outputs: Mapping[str, pd.DataFrame],
    record: dict[str, Any],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Load ``outputs`` (table name → frame without the version column) and publish them."""
    with engine.begin() as conn:
        registry.confirm_held(conn, claim)  # a run that lost its claim writes nothing
        cursor = driver_connection(conn).cursor()
        namespace = schema_of(conn)
        version = sql.Literal(claim.version)
        for table in schema.OUTPUT_TABLES:
            checkpoint(f"write:{table.name}")
            part = sql.Identifier(namespace, partition_name(table, claim.run_id))
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                ).format(part, sql.Identifier(namespace, table.name))
            )
            # Proves the partition bound up front, so ATTACH need not scan the table.
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (version = {})").format(
                    part, sql.Identifier(f"{partition_name(table, claim.run_id)}_bound"), version
                )
            )
            frame = outputs[table.name].assign(version=claim.version)
            copy_frame(conn, part, frame[[c.name for c in table.columns]], progress)

        checkpoint("publish:before")
        if claim.replacing:
            _drop_partitions(conn, claim.version)
        for table in schema.OUTPUT_TABLES:
            cursor.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                    sql.Identifier(namespace, table.name),
                    sql.Identifier(namespace, partition_name(table, claim.run_id)),
                    version,
                )
            )
        registry.mark_published(conn, claim, record)
        checkpoint("publish:commit")
    checkpoint("publish:after")


def _drop_partitions(conn: sa.Connection, version: str) -> None:
    """Drop the partitions currently published under ``version`` (their run is in the registry)."""
    versions = schema.model_versions
    run_id = conn.execute(
        sa.select(versions.c.run_id).where(versions.c.name == version).with_for_update()
    ).scalar()
    if run_id is None:
        return
    _lock_outputs(conn)
    namespace = schema_of(conn)
    cursor = driver_connection(conn).cursor()
    for table in schema.OUTPUT_TABLES:
        cursor.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(
                sql.Identifier(namespace, partition_name(table, run_id))
            )
        )


def drop_version_outputs(conn: sa.Connection, version: str) -> None:
    """Remove a version's published outputs: a DROP per table, never a mass DELETE."""
    _drop_partitions(conn, version)


def _lock_outputs(conn: sa.Connection) -> None:
    """ACCESS EXCLUSIVE on the output tables (not their partitions), never waiting long on some
    while holding others.

    A reader of two output tables (the views join them) holds its lock on one while it waits for
    the other. Dropping partitions one parent after another, waiting each time, deadlocks with
    such a reader, and PostgreSQL resolves that by cancelling the reader's query. So all five are
    asked for at once, each attempt waiting at most :data:`LOCK_SLICE_MS`; a failed attempt gives
    back what it got (savepoint) and is retried, until the session's ``lock_timeout`` is spent.
    """
    cursor = driver_connection(conn).cursor()
    namespace = schema_of(conn)
    lock = sql.SQL("LOCK TABLE ONLY {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(namespace, t.name) for t in schema.OUTPUT_TABLES)
    )
    setting, budget_ms = conn.execute(
        sa.text(
            "SELECT current_setting('lock_timeout'), setting::int FROM pg_settings"
            " WHERE name = 'lock_timeout'"
        )
    ).one()
    deadline = time.monotonic() + budget_ms / 1000
    while True:
        cursor.execute("SAVEPOINT recsys_lock_outputs")
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (f"{LOCK_SLICE_MS}ms",))
        try:
            cursor.execute(lock)
        except psycopg.errors.LockNotAvailable:
            cursor.execute("ROLLBACK TO SAVEPOINT recsys_lock_outputs")
            if budget_ms and time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0, LOCK_SLICE_MS / 1000))  # let the readers through
            continue
        cursor.execute("RELEASE SAVEPOINT recsys_lock_outputs")
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (setting,))
        return
