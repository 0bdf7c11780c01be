"""Reading (bigint, real[]) rows back by binary COPY (``binary_copy.read_vectors``), from a real
PostgreSQL: what was written comes back in blocks, and rows it cannot decode are refused."""

import numpy as np
import pytest
import sqlalchemy as sa
from psycopg import sql

from recsys.storage import binary_copy
from recsys.storage.binary_copy import binary_copy as copy_in
from recsys.storage.binary_copy import read_vectors


def _table(conn: sa.Connection, schema: str) -> sql.Identifier:
    conn.exec_driver_sql(f'CREATE TABLE "{schema}".vectors (id bigint, v real[])')
    return sql.Identifier(schema, "vectors")


def _read(conn: sa.Connection, table: sql.Identifier) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(read_vectors(conn, sql.SQL("SELECT id, v FROM {} ORDER BY id").format(table)))


def test_rows_come_back_as_written_a_block_at_a_time(
    engine: sa.Engine, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(1_000, dtype=np.int64) * 7 - 3_000
    vectors = rng.normal(size=(1_000, 5)).astype(np.float32)
    vectors[0, 0] = np.float32(1e-38)  # a subnormal-adjacent value survives exactly
    monkeypatch.setattr(binary_copy, "_READ_BYTES", 4_096)  # many blocks from 1,000 rows
    with engine.begin() as conn:
        table = _table(conn, schema)
        with copy_in(conn, table, ("id", "v")) as write:
            write([ids, vectors])
        blocks = _read(conn, table)
    assert len(blocks) > 10
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), ids)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), vectors)


def test_no_rows_give_no_block(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        assert _read(conn, _table(conn, schema)) == []


@pytest.mark.parametrize(
    "values",
    [
        "(1, '{1,2}'), (2, NULL)",  # a NULL array after a good row
        "(1, NULL), (2, '{1,2}')",  # a NULL array first
        "(1, '{1,2}'), (2, '{1,2,3}')",  # arrays of two widths
        "(1, '{{1,2},{3,4}}')",  # two dimensions
        "(1, '{1,NULL}')",  # a NULL inside
    ],
)
def test_rows_it_cannot_decode_are_refused(engine: sa.Engine, schema: str, values: str) -> None:
    with engine.begin() as conn:
        table = _table(conn, schema)
        conn.exec_driver_sql(f'INSERT INTO "{schema}".vectors VALUES {values}')
        with pytest.raises(ValueError):
            _read(conn, table)
