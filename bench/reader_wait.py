"""How long an analyst's query waits while `recsys-job run` publishes a version (ML-100K).

A publish commits under an exclusive lock on the output tables, so a query that starts meanwhile
waits for the attach and the status flip. In a scratch schema holding ML-100K, a reader on its own
connection counts the version's rows in ``published_recommendations`` without a pause while
``recsys-job run --replace`` (one epoch: training time does not matter here) publishes it, and
prints, per publish, the read that first saw the new version (it started during the lock, or
just after) beside the median and the longest read. Other work on the machine adds to every read.

    python bench/reader_wait.py [--data ../shared/data/ml-100k] [--database-url URL] [--publishes 3]
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from _scratch import scratch_schema

from recsys.storage import schema

REPO = Path(__file__).resolve().parents[1]
VERSION = "bench"


class Reader(threading.Thread):
    """Counts the version's published rows in a loop; keeps (seconds, rows) of every read."""

    def __init__(self, engine: sa.Engine, schema: str, run_id: int) -> None:
        super().__init__(daemon=True)
        self.engine, self.run_id = engine, run_id
        # The run id changes with each publish: a read counts the new version's rows or none.
        self.query = sa.text(
            f'SELECT count(*) FROM "{schema}".published_recommendations r'
            f' JOIN "{schema}".model_versions v ON v.name = r.version'
            " WHERE r.version = :version AND v.run_id > :run_id"
        )
        self.reads: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                rows = conn.execute(self.query, {"version": VERSION, "run_id": self.run_id})
                self.reads.append((time.perf_counter() - started, rows.scalar_one()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    parser.add_argument("--publishes", type=int, default=3)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no MovieLens data at {args.data}; pass --data")

    run = ["run", "--model-version", VERSION, "--epochs", "1", "--replace"]
    with scratch_schema(args.database_url) as scratch:
        scratch.job(["db", "upgrade"], quiet=True)
        scratch.job(["ingest", "movielens", str(args.data)], quiet=True)
        scratch.job(run, quiet=True)  # the version the publishes below replace
        engine = scratch.engine()
        try:
            for number in range(1, args.publishes + 1):
                versions = schema.model_versions
                with engine.connect() as conn:
                    run_id = conn.execute(
                        sa.select(versions.c.run_id).where(versions.c.name == VERSION)
                    ).scalar_one()
                reader = Reader(engine, scratch.schema, run_id)
                reader.start()
                try:
                    scratch.job(run, quiet=True)
                finally:
                    reader.stop.set()
                    reader.join()
                _report(number, reader.reads)
        finally:
            engine.dispose()


def _report(number: int, reads: list[tuple[float, int]]) -> None:
    ms = [1000 * seconds for seconds, _ in reads]
    first = next((1000 * seconds for seconds, rows in reads if rows), None)
    seen = "no read saw it" if first is None else f"the first read to see it took {first:.1f} ms"
    print(
        f"publish {number}: {len(reads)} reads; {seen}; median {statistics.median(ms):.1f} ms,"
        f" longest {max(ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
