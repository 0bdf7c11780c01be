"""The shard ledger on its own (no Ray): two attempts at a shard wait for each other and the
second writes nothing; a rolled-back attempt leaves the shard to the next; the check before the
publish accounts for every shard and every row."""

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from psycopg import sql

from recsys.errors import RecsysError
from recsys.storage.bulk import driver_connection, schema_of
from recsys.versions import registry, shard_ledger
from recsys.versions.shard_ledger import Entry


@pytest.fixture
def run_id(engine: sa.Engine) -> Iterator[int]:
    claim = registry.acquire(engine, "ledger", replace=False)
    try:
        yield registry.start(engine, claim, {})
    finally:
        claim.release()


def test_a_second_attempt_waits_for_the_first_then_writes_nothing(
    engine: sa.Engine, run_id: int
) -> None:
    written = Entry(0, 10, 95, 1, 2)
    found: list[Entry | None] = []

    def second_attempt() -> None:
        with engine.begin() as conn:
            found.append(shard_ledger.take(conn, run_id, 0, 10))

    with engine.connect() as first:
        assert shard_ledger.take(first, run_id, 0, 10) is None  # ours to write
        racer = threading.Thread(target=second_attempt)
        racer.start()
        racer.join(1.0)
        assert racer.is_alive() and found == []  # waiting on the shard's key
        shard_ledger.complete(first, run_id, written)
        first.commit()
    racer.join(10)
    assert found == [written]


def test_an_attempt_rolled_back_leaves_the_shard_to_the_next(
    engine: sa.Engine, run_id: int
) -> None:
    with engine.connect() as first:
        assert shard_ledger.take(first, run_id, 3, 10) is None
        first.rollback()  # the worker died before its commit
    with engine.begin() as retry:
        assert shard_ledger.take(retry, run_id, 3, 10) is None


def test_the_check_accounts_for_every_shard_and_row(engine: sa.Engine, run_id: int) -> None:
    with engine.begin() as conn:
        table = sql.Identifier(schema_of(conn), "rows_written")
        cursor = driver_connection(conn).cursor()
        cursor.execute(
            sql.SQL("CREATE TABLE {} AS SELECT generate_series(1, 30) AS x").format(table)
        )
        for entry in (Entry(0, 10, 20, 0, 1), Entry(1, 5, 10, 1, 0)):
            shard_ledger.take(conn, run_id, entry.shard, entry.user_count)
            shard_ledger.complete(conn, run_id, entry)
    with engine.connect() as conn:
        assert [e.row_count for e in shard_ledger.check(conn, run_id, table, [10, 5])] == [20, 10]
        for users, why in (([10, 5, 4], r"missing \[2\]"), ([10, 6], r"other user counts \[1\]")):
            with pytest.raises(RecsysError, match=why):
                shard_ledger.check(conn, run_id, table, users)
        driver_connection(conn).cursor().execute(
            sql.SQL("INSERT INTO {} VALUES (31)").format(table)
        )
        with pytest.raises(RecsysError, match="holds 31 rows where its shards wrote 30"):
            shard_ledger.check(conn, run_id, table, [10, 5])
