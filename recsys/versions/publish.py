"""Write a run's outputs and make them visible, all in one transaction.

Each output goes into a table of its own (``<table>_r<run_id>``), filled with COPY and then
given its primary key; publishing attaches those tables as the version's partitions (dropping the
replaced version's partitions first) and flips the registry row to ``published``. Until that
transaction commits nothing of the version is visible; if the process dies at any point before,
PostgreSQL rolls all of it back and leaves no tables behind.

One output can instead be :func:`prepared`: its table created and committed beforehand, so that
other sessions (Ray workers, each writing a shard) can fill it, and adopted by the publishing
transaction. Unattached, it is invisible through the output table and the views; a run that
fails drops it, and one killed outright leaves it to the next run of the version, or ``prune``.

ATTACH alone takes only SHARE UPDATE EXCLUSIVE on the output tables, which lets readers through:
a reader could plan its query before the commit (no partition for the version yet) and take its
snapshot after it (the registry says published), and read the version as published and empty.
So the commit happens under ACCESS EXCLUSIVE on the output tables: a reader waits for it, then
plans and reads with the commit in view. Dropping a replaced version's partitions needs that lock
anyway; see :func:`_lock_outputs` for how it is taken without deadlocking readers. A reader's
open transaction on an output table delays a publish by its length, up to ``lock_timeout``.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys.faults import checkpoint
from recsys.storage import schema
from recsys.storage.bulk import copy_frame, driver_connection, schema_of
from recsys.storage.locks import lock_exclusively
from recsys.versions import registry

#: The order the output tables are locked in. A reader blocked on the first one holds none of the
#: others when its query reads that one first; recommendations, the table most read, goes first.
#: Under a reader of recommendations and evaluation_results in one statement this took one
#: attempt per publish, where the schema's order took up to nine (see :func:`_lock_outputs`).
LOCK_ORDER = tuple(reversed(schema.OUTPUT_TABLES))


def partition_name(table: sa.Table, run_id: int) -> str:
    return f"{table.name}_r{run_id}"


class RunTables:
    """The run's own table of each output, created and filled inside the publishing transaction.

    :meth:`open` creates an output's table (announcing ``write:<table>`` to fault injection
    first) and returns its name; rows go in by COPY, binary for the large outputs. The version
    column is filled by a column default, so writers send only the other columns. :meth:`adopt`
    takes in a table :func:`prepared` and filled beforehand instead.
    """

    def __init__(self, conn: sa.Connection, claim: registry.Claim) -> None:
        self.conn, self.claim = conn, claim
        self.namespace = schema_of(conn)
        self.opened: list[sa.Table] = []

    def name(self, table: sa.Table) -> sql.Identifier:
        return sql.Identifier(self.namespace, partition_name(table, self.claim.run_id))

    def open(self, table: sa.Table) -> sql.Identifier:
        checkpoint(f"write:{table.name}")
        self.conn.execute(sa.schema.CreateTable(_partition_table(table, self.claim)))
        self.opened.append(table)
        return self.name(table)

    def adopt(self, table: sa.Table) -> sql.Identifier:
        """Publish ``table``'s run table made by :func:`prepared` (filled by other sessions)."""
        self.opened.append(table)
        return self.name(table)

    def copy_frame(self, table: sa.Table, frame: pd.DataFrame) -> int:
        """Create ``table``'s run table and COPY a (small) frame into it, as CSV."""
        return copy_frame(self.conn, self.open(table), frame)

    def add_keys(self) -> None:
        """Primary keys, built once the rows are in so that ATTACH adopts them rather than
        building them under the exclusive lock that makes readers wait; and the version default
        goes, leaving the partitions plain copies of their parents' columns."""
        cursor = driver_connection(self.conn).cursor()
        for table in self.opened:
            key = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.primary_key)
            cursor.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD PRIMARY KEY ({}), ALTER COLUMN version DROP DEFAULT"
                ).format(self.name(table), key)
            )


def publish(
    engine: sa.Engine,
    claim: registry.Claim,
    write_outputs: Callable[[RunTables], dict[str, Any]],
    then: Callable[[sa.Connection], None] | None = None,
    then_replaces: Sequence[str] = (),
) -> None:
    """Write every output with ``write_outputs`` (which returns the registry record: params,
    statistics, ...) and publish them, in one transaction; ``then`` runs in it last, with the
    version published (a promotion commits with the version it promotes). ``then_replaces``
    names the views ``then`` re-creates: they are locked with the output tables, all at once, as
    a reader holding such a view while it waits for an output table would otherwise deadlock
    with this transaction."""
    with engine.begin() as conn:
        registry.confirm_held(conn, claim)  # a run that lost its claim writes nothing
        tables = RunTables(conn, claim)
        record = write_outputs(tables)
        missing = set(schema.OUTPUT_TABLES) - set(tables.opened)
        if missing:
            raise ValueError(f"outputs not written: {sorted(t.name for t in missing)}")
        tables.add_keys()

        checkpoint("publish:before")
        replaced = registry.published_run(conn, claim.version) if claim.replacing else None
        _lock_outputs(conn, then_replaces)
        if replaced is not None:
            _drop_run_tables(conn, replaced)
        cursor = driver_connection(conn).cursor()
        for table in schema.OUTPUT_TABLES:
            cursor.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                    sql.Identifier(tables.namespace, table.name),
                    tables.name(table),
                    sql.Literal(claim.version),
                )
            )
        registry.mark_published(conn, claim, record)
        if then is not None:
            then(conn)
        checkpoint("publish:commit")
    checkpoint("publish:after")


@contextmanager
def prepared(engine: sa.Engine, claim: registry.Claim, table: sa.Table) -> Iterator[sql.Identifier]:
    """``table``'s run table, created and committed now so that other sessions can write into
    it before the publish adopts it (:meth:`RunTables.adopt`); yields its name.

    The tables of ``table`` that earlier runs of the version left unattached (killed outright
    after preparing theirs) are dropped first: holding the version, this run knows none of them
    is live. If the block fails, the run's table is dropped unless it was attached (a failure
    after the publish committed leaves the version as readers see it). Either drop is best
    effort: without the database, ``prune`` drops such tables later (runs not live).
    """
    runs = schema.version_runs
    with engine.connect() as conn:
        earlier = conn.execute(
            sa.select(runs.c.run_id).where(
                runs.c.version == claim.version, runs.c.run_id != claim.run_id
            )
        ).scalars()
        left = [partition_name(table, run_id) for run_id in earlier]
    _drop_unattached(engine, left)
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateTable(_partition_table(table, claim)))
        name = RunTables(conn, claim).name(table)
    try:
        yield name
    except BaseException:
        _drop_unattached(engine, [partition_name(table, claim.run_id)])
        raise


def unattached_tables(conn: sa.Connection) -> list[str]:
    """Plain tables of the schema that are not attached as partitions (run tables not yet
    published, among others), by name."""
    return list(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relkind = 'r' AND NOT c.relispartition"
            ),
            {"schema": schema_of(conn)},
        ).scalars()
    )


def _drop_unattached(engine: sa.Engine, names: Sequence[str]) -> None:
    """Drop those of ``names`` that exist in the schema as tables not attached as partitions."""
    try:
        with engine.begin() as conn:
            namespace = schema_of(conn)
            cursor = driver_connection(conn).cursor()
            for name in set(unattached_tables(conn)).intersection(names):
                cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(namespace, name)))
    except (sa.exc.DBAPIError, psycopg.Error):
        pass  # the database is gone or a lock wait timed out: prune drops them later


def _partition_table(table: sa.Table, claim: registry.Claim) -> sa.Table:
    """A table for the run's rows of ``table``: its columns, NOT NULLs and CHECKs (what ATTACH
    requires), and a CHECK on the version that proves the partition bound, so ATTACH need not scan.

    Built from the metadata rather than ``LIKE`` the output table, which would hold a lock on it
    until commit, and two runs holding those could never both get the exclusive lock to publish.
    The primary key is added after the COPY; foreign keys come with ATTACH. The version column
    defaults to the run's version while the rows go in.
    """
    name = partition_name(table, claim.run_id)
    checks = (c for c in table.constraints if isinstance(c, sa.CheckConstraint))
    columns = (
        sa.Column(
            c.name,
            c.type,
            nullable=c.nullable,
            server_default=sa.literal(claim.version) if c.name == "version" else None,
        )
        for c in table.columns
    )
    return sa.Table(
        name,
        sa.MetaData(schema=table.schema),
        *columns,
        *(sa.CheckConstraint(c.sqltext, name=c.name) for c in checks),
        sa.CheckConstraint(sa.column("version") == claim.version, name=f"{name}_bound"),
    )


def drop_version_outputs(conn: sa.Connection, version: str) -> None:
    """Remove a version's published outputs: a DROP per table, never a mass DELETE."""
    run_id = registry.published_run(conn, version)
    if run_id is not None:
        _lock_outputs(conn)
        _drop_run_tables(conn, run_id)


def _drop_run_tables(conn: sa.Connection, run_id: int) -> None:
    namespace = schema_of(conn)
    cursor = driver_connection(conn).cursor()
    for table in schema.OUTPUT_TABLES:
        cursor.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(
                sql.Identifier(namespace, partition_name(table, run_id))
            )
        )


def _lock_outputs(conn: sa.Connection, views: Sequence[str] = ()) -> None:
    """ACCESS EXCLUSIVE on the output tables (not their partitions), never waiting long on some
    while holding others (see :mod:`recsys.storage.locks`)."""
    lock_exclusively(conn, [*LOCK_ORDER, *views])
