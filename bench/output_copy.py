"""A run's output COPY against a raw COPY of the same rows, side by side in one process.

The two large outputs at the size of the 20M scale case (default 1M users: 10M recommendation
rows, and 1M user embeddings of 64 floats with their layer-0 rows) go into a run's own table
(``RunTables.open``, as a run creates it) two ways, alternating, each in a transaction that is
rolled back afterwards:
  - recsys: what a run does — ``binary_copy`` from numpy columns, a chunk of rows at a time
    (100K rows, as ``outputs.CHUNK_ROWS``), the encoding included;
  - raw: ``COPY … FROM STDIN (FORMAT BINARY)`` of the same bytes, encoded beforehand into a file
    and streamed from it in 8 MiB writes: the server's share alone, the floor for any client.
Prints seconds, rows/s and MB/s of each, and recsys's throughput as a share of raw's (the
target: at least 70 %), the best of ``--repeats``; and this process's peak RSS.

    python bench/output_copy.py [--users 1000000] [--k 10] [--dim 64] [--repeats 2]
        [--database-url URL]
"""

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from _scratch import scratch_schema
from psycopg import sql

from recsys.memory import peak_rss_bytes
from recsys.scoring.outputs import CHUNK_ROWS
from recsys.scoring.recommender import RECOMMENDATION_COLUMNS
from recsys.storage import schema
from recsys.storage.binary_copy import Field, binary_copy, encode
from recsys.storage.bulk import driver_connection
from recsys.versions import registry
from recsys.versions.publish import RunTables

_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
_BLOCK = 1 << 23

Chunks = Callable[[], Iterator[list[Field]]]


def recommendation_chunks(users: int, k: int, items: int) -> Chunks:
    """Every user's k rows (user, rank, movie, score, source), CHUNK_ROWS rows at a time."""
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(1, users + 1, dtype=np.int64), k)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int16), users)
    movie = rng.integers(1, items + 1, users * k, dtype=np.int64)
    score = rng.random(users * k, dtype=np.float32)

    def chunks() -> Iterator[list[Field]]:
        for start in range(0, len(user), CHUNK_ROWS):
            cut = slice(start, start + CHUNK_ROWS)
            yield [user[cut], rank[cut], movie[cut], score[cut], "model"]

    return chunks


def embedding_chunks(users: int, dim: int) -> Chunks:
    """Every user's id, embedding and layer-0 row, CHUNK_ROWS rows at a time."""
    rng = np.random.default_rng(1)
    ids = np.arange(1, users + 1, dtype=np.int64)
    final = rng.standard_normal((users, dim), dtype=np.float32)
    layer0 = rng.standard_normal((users, dim), dtype=np.float32)

    def chunks() -> Iterator[list[Field]]:
        for start in range(0, users, CHUNK_ROWS):
            cut = slice(start, start + CHUNK_ROWS)
            yield [ids[cut], final[cut], layer0[cut]]

    return chunks


def encoded_file(chunks: Chunks, path: Path) -> int:
    """The whole binary COPY stream of ``chunks`` written to ``path``; its size in bytes."""
    with path.open("wb") as out:
        out.write(_HEADER)
        for fields in chunks():
            out.write(encode(fields).tobytes())
        out.write(_TRAILER)
    return path.stat().st_size


def into_run_table(
    engine: sa.Engine,
    version: str,
    table: sa.Table,
    fill: Callable[[sa.Connection, sql.Composable], int],
) -> tuple[float, int]:
    """``fill`` a new run table of ``table`` (rolled back afterwards); seconds and rows."""
    claim = registry.acquire(engine, version, replace=False)
    registry.start(engine, claim, {})
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            target = RunTables(conn, claim).open(table)
            started = time.perf_counter()
            rows = fill(conn, target)
            seconds = time.perf_counter() - started
            transaction.rollback()
    finally:
        claim.release()
    return seconds, rows


def recsys_fill(
    chunks: Chunks, columns: Sequence[str]
) -> Callable[[sa.Connection, sql.Composable], int]:
    def fill(conn: sa.Connection, target: sql.Composable) -> int:
        with binary_copy(conn, target, columns) as write:
            return sum(write(fields) for fields in chunks())

    return fill


def raw_fill(path: Path, columns: Sequence[str]) -> Callable[[sa.Connection, sql.Composable], int]:
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)

    def fill(conn: sa.Connection, target: sql.Composable) -> int:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, names)
        with driver_connection(conn).cursor() as cursor:
            with cursor.copy(statement) as copy, path.open("rb") as source:
                while block := source.read(_BLOCK):
                    copy.write(block)
            return cursor.rowcount

    return fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    args = parser.parse_args()
    outputs = {
        "recommendations": (
            schema.recommendations,
            RECOMMENDATION_COLUMNS,
            recommendation_chunks(args.users, args.k, args.items),
        ),
        "user_embeddings": (
            schema.user_embeddings,
            ("user_id", "embedding", "layer0"),
            embedding_chunks(args.users, args.dim),
        ),
    }
    with scratch_schema(args.database_url) as scratch, tempfile.TemporaryDirectory() as folder:
        scratch.job(["db", "upgrade"], quiet=True)
        engine = scratch.engine()
        print(f"{'output':<17}{'way':<8}{'rows':>12}{'seconds':>9}{'rows/s':>12}{'MB/s':>8}")
        for name, (table, columns, chunks) in outputs.items():
            path = Path(folder) / f"{name}.copy"
            size = encoded_file(chunks, path)
            ways = {"recsys": recsys_fill(chunks, columns), "raw": raw_fill(path, columns)}
            best: dict[str, tuple[float, int]] = {}
            for attempt in range(args.repeats):
                for way, fill in ways.items():
                    seconds, rows = into_run_table(engine, f"{way}-{name}-{attempt}", table, fill)
                    if way not in best or seconds < best[way][0]:
                        best[way] = (seconds, rows)
            for way, (seconds, rows) in best.items():
                print(
                    f"{name:<17}{way:<8}{rows:>12,}{seconds:>9.1f}{rows / seconds:>12,.0f}"
                    f"{size / seconds / 1e6:>8.0f}"
                )
            share = best["raw"][0] / best["recsys"][0]
            print(f"{name:<17}recsys at {share:.0%} of raw COPY's throughput (target ≥ 70 %)")
            path.unlink()
        engine.dispose()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"peak RSS {peak_rss_bytes() / 2**20:,.0f} MiB; load average {load}")


if __name__ == "__main__":
    main()
