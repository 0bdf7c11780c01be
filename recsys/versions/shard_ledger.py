"""The ledger of a run's recommendation shards: what makes each shard's write happen once.

A worker writing a shard (``run --ray``) first takes the shard's row in ``recommendation_shards``
(:func:`take`), in the transaction that then COPYs the shard's rows and fills in its counts
(:func:`complete`). So the row exists exactly when the shard's rows are committed: an attempt
retried after the rows committed (its worker died before reporting) finds it and writes nothing,
and an attempt racing another waits on the key until the other's transaction ends. Before the
publish, :func:`check` proves every shard is there and the run's table holds the rows counted.

Public API:
    Entry(shard, user_count, row_count, users_without, users_fewer_than_k)
    take(conn, run_id, shard, user_count) -> None (the shard is ours) | Entry (written already)
    complete(conn, run_id, entry)
    check(conn, run_id, table, user_counts) -> list[Entry]
"""

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import insert

from recsys.errors import RecsysError
from recsys.storage import schema
from recsys.storage.bulk import driver_connection

_LEDGER = schema.recommendation_shards


@dataclass(frozen=True)
class Entry:
    """What one shard wrote: its users, their rows, and its short lists."""

    shard: int
    user_count: int
    row_count: int
    users_without: int
    users_fewer_than_k: int


def take(conn: sa.Connection, run_id: int, shard: int, user_count: int) -> Entry | None:
    """Take the shard for this transaction: None when it is ours to write (its row is inserted,
    counts to follow), or the entry an earlier attempt committed. Waits while another open
    transaction holds the shard."""
    inserted = conn.execute(
        insert(_LEDGER)
        .values(
            run_id=run_id,
            shard=shard,
            user_count=user_count,
            row_count=0,
            users_without=0,
            users_fewer_than_k=0,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        .on_conflict_do_nothing()
        .returning(_LEDGER.c.shard)
    ).first()
    if inserted is not None:
        return None
    return _entries(conn, run_id, shard)[0]


def complete(conn: sa.Connection, run_id: int, entry: Entry) -> None:
    """Record the shard's counts, in the transaction that wrote its rows."""
    conn.execute(
        sa.update(_LEDGER)
        .where(_LEDGER.c.run_id == run_id, _LEDGER.c.shard == entry.shard)
        .values(
            user_count=entry.user_count,
            row_count=entry.row_count,
            users_without=entry.users_without,
            users_fewer_than_k=entry.users_fewer_than_k,
        )
    )


def check(
    conn: sa.Connection, run_id: int, table: sql.Composable, user_counts: Sequence[int]
) -> list[Entry]:
    """The run's entries, shard by shard, once it is proven that shard ``i`` is there with
    ``user_counts[i]`` users (and no other shard is) and that ``table`` holds exactly the rows
    they count; raises RecsysError otherwise."""
    entries = _entries(conn, run_id)
    found = {entry.shard: entry.user_count for entry in entries}
    expected = dict(enumerate(user_counts))
    if found != expected:
        missing = sorted(set(expected) - set(found))
        wrong = sorted(s for s in set(expected) & set(found) if found[s] != expected[s])
        extra = sorted(set(found) - set(expected))
        raise RecsysError(
            f"the shards of run {run_id} do not add up: missing {missing}, with other user "
            f"counts {wrong}, unexpected {extra}; nothing was published"
        )
    cursor = driver_connection(conn).cursor()
    rows = cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]
    counted = sum(entry.row_count for entry in entries)
    if rows != counted:
        raise RecsysError(
            f"run {run_id}'s recommendations table holds {rows:,} rows where its shards wrote "
            f"{counted:,}; nothing was published"
        )
    return entries


def _entries(conn: sa.Connection, run_id: int, shard: int | None = None) -> list[Entry]:
    query = sa.select(
        _LEDGER.c.shard,
        _LEDGER.c.user_count,
        _LEDGER.c.row_count,
        _LEDGER.c.users_without,
        _LEDGER.c.users_fewer_than_k,
    ).where(_LEDGER.c.run_id == run_id)
    if shard is not None:
        query = query.where(_LEDGER.c.shard == shard)
    return [Entry(*row) for row in conn.execute(query.order_by(_LEDGER.c.shard))]
