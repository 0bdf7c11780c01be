"""A year of nights: do the analysts' views stay fast with 400 published versions?

In a scratch schema holding a synthetic catalogue, publishes ``--versions`` small versions one
after another through the real registry and publish code and the real output writers (random
embeddings instead of training: training time is not what grows with the versions kept), and
prints, as the number of versions grows:

- ``production_recommendations`` for one user (a different user each time, one connection, as an
  analyst in psql would query it), with ``production`` not set (the latest published version,
  found while the query runs) and promoted to the newest version (named in the view as a
  constant): median and 95th percentile over ``--queries`` queries, and the planning and
  execution time PostgreSQL reports for one of them;
- how long each publish holds the exclusive lock on the output tables (from the moment
  ``_lock_outputs`` has them all to the commit), median and longest per stretch of publishes;
  and the longest ``production_recommendations`` read (production promoted) a reader made while
  the last stretch of publishes ran beside it;

and once all are published: ``production_similar_items`` for one movie; one user's list of a
version named as a constant (which the planner prunes to that version's partition, where the
alias views must plan every partition: the difference is the planning time); the library's
``list_versions`` on a new connection and ``recsys-job versions`` as a process (with a process
that only starts and prints its version beside it, to tell start-up from work); and
``prune --keep 1`` of all but one. The load average is printed beside the figures: other work on
the machine adds to every one of them.

    python bench/many_versions.py [--database-url URL] [--versions 400] [--users 500]
        [--items 200] [--queries 200]
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from _scratch import Scratch, scratch_schema

from recsys.evaluation.evaluate import EvaluationRow
from recsys.evaluation.metrics import METRICS
from recsys.ingest.load.parsed import load
from recsys.model.train import EpochStats
from recsys.scoring import outputs
from recsys.scoring.recommender import Recommender
from recsys.storage import migrate, schema
from recsys.storage.bulk import schema_of
from recsys.synthetic import movielens_like
from recsys.versions import aliases, registry
from recsys.versions import prune as pruning
from recsys.versions import publish as publishing
from recsys.versions.listing import list_versions
from recsys.versions.publish import RunTables

DIM, K, STRETCH = 16, 10, 20
USER_QUERY = sa.text(
    "SELECT rank, movie_id, title, score FROM production_recommendations"
    " WHERE user_id = :user ORDER BY rank"
)
MOVIE_QUERY = sa.text(
    "SELECT rank, similar_title, score FROM production_similar_items"
    " WHERE movie_id = :movie ORDER BY rank"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    parser.add_argument("--versions", type=int, default=400)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    checkpoints = sorted({1, *range(100, args.versions + 1, 100), args.versions})

    with scratch_schema(args.database_url) as scratch:
        engine = scratch.engine()
        try:
            migrate.upgrade(engine, scratch.schema)
            load(engine, movielens_like.generate(args.users, args.items, 20, seed=1))
            _bench(scratch, engine, args, checkpoints)
        finally:
            engine.dispose()


def _bench(scratch: Scratch, engine: sa.Engine, args: argparse.Namespace, checkpoints) -> None:
    print(f"load average at start: {_load()}")
    fake = FakeOutputs(engine, args.users, args.items)
    clock = LockClock()
    clock.install()
    rng = np.random.default_rng(0)
    holds: list[float] = []
    reader: Reader | None = None
    for number in range(1, args.versions + 1):
        if number == args.versions - STRETCH + 1:  # a reader beside the last stretch
            reader = Reader(engine, args.users)
            reader.start()
        holds.append(fake.publish(f"night-{number:04d}", rng, clock))
        if number % STRETCH == 0 or number == args.versions:
            stretch = [1000 * h for h in holds[-STRETCH:]]
            print(
                f"publishes {max(1, number - STRETCH + 1)}-{number}: exclusive lock held median"
                f" {statistics.median(stretch):.1f} ms, longest {max(stretch):.1f} ms"
            )
        if number in checkpoints:
            _unset_production(engine)
            _user_queries(engine, f"{number} versions, production not set", args, rng)
            aliases.promote(engine, f"night-{number:04d}")
            _user_queries(engine, f"{number} versions, production promoted", args, rng)
    if reader is not None:
        reader.stop.set()
        reader.join()
        print(
            f"a reader of production_recommendations beside the last {STRETCH} publishes:"
            f" {len(reader.reads)} reads, median {statistics.median(reader.reads):.1f} ms,"
            f" longest {max(reader.reads):.1f} ms"
        )
    _movie_queries(engine, args.items, args.queries, rng)
    _literal_version(engine, f"night-{args.versions:04d}", args.users, args.queries, rng)
    _versions(scratch, args.versions)
    _prune(engine)
    print(f"load average at end: {_load()}")


class FakeOutputs:
    """Small versions written by the pipeline's own writers from random embeddings."""

    def __init__(self, engine: sa.Engine, n_users: int, n_items: int) -> None:
        self.engine = engine
        with engine.connect() as conn:
            self.user_ids = np.array(
                conn.execute(sa.select(schema.users.c.user_id)).scalars().all()
            )
            self.item_ids = np.array(
                conn.execute(sa.select(schema.movies.c.movie_id)).scalars().all()
            )

    def publish(self, version: str, rng: np.random.Generator, clock: "LockClock") -> float:
        """Publish ``version``; the seconds its publish held the exclusive lock."""
        users, items = len(self.user_ids), len(self.item_ids)
        user_emb = rng.standard_normal((users, DIM), dtype=np.float32)
        item_emb = rng.standard_normal((items, DIM), dtype=np.float32)
        recommender = Recommender(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            user_emb=user_emb,
            item_emb=item_emb,
            popularity=rng.random(items, dtype=np.float32),
            trained=np.ones(users, bool),
            exclude=sp.csr_matrix((users, items), dtype=np.int8),
            k=K,
        )
        evaluation = [
            EvaluationRow(model, metric, K, float(rng.random()), users)
            for model in outputs.STORED_NAMES
            for metric in METRICS
        ]

        def write(tables: RunTables) -> dict:
            outputs.write_history(tables, [EpochStats(1, 0.69, None, 0.05, 1.0)], K)
            outputs.write_evaluation(tables, evaluation)
            # The layer-0 rows stored for warm starts: the final ones stand in (same size).
            users_table, items_table = schema.user_embeddings, schema.item_embeddings
            outputs.write_embeddings(tables, users_table, self.user_ids, user_emb, user_emb)
            outputs.write_embeddings(tables, items_table, self.item_ids, item_emb, item_emb)
            outputs.write_similar_items(tables, self.item_ids, item_emb, K)
            outputs.write_recommendations(tables, recommender)
            return {"data_stats": {"users": users}, "phase_seconds": {}, "code_version": "bench"}

        claim = registry.acquire(self.engine, version, replace=False)
        try:
            registry.start(self.engine, claim, {"bench": True})
            publishing.publish(self.engine, claim, write)
            return time.perf_counter() - clock.locked_at
        finally:
            claim.release()


@dataclass
class LockClock:
    """When the running publish got the exclusive lock on every output table: set as
    :func:`recsys.versions.publish._lock_outputs` returns. The lock is held until the commit,
    which :func:`~recsys.versions.publish.publish` has made when it returns."""

    locked_at: float = 0.0

    def install(self) -> None:
        take: Callable[..., None] = publishing._lock_outputs

        def timed(conn: sa.Connection, *views: Sequence[str]) -> None:
            take(conn, *views)
            self.locked_at = time.perf_counter()

        publishing._lock_outputs = timed


class Reader(threading.Thread):
    """Queries one user's production list in a loop; keeps each read's milliseconds."""

    def __init__(self, engine: sa.Engine, n_users: int) -> None:
        super().__init__(daemon=True)
        self.engine, self.n_users = engine, n_users
        self.reads: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            _search_path(conn)
            user = 1
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute(USER_QUERY, {"user": user}).all()
                self.reads.append(1000 * (time.perf_counter() - started))
                user = user % self.n_users + 1


def _unset_production(engine: sa.Engine) -> None:
    """No alias: production is the latest published version, found while each query runs."""
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.version_aliases))
        aliases.pin_production(conn)


def _user_queries(
    engine: sa.Engine, label: str, args: argparse.Namespace, rng: np.random.Generator
) -> None:
    users = rng.integers(1, args.users + 1, args.queries)
    ms, rows = _timed(engine, USER_QUERY, [{"user": int(u)} for u in users])
    plan = _explain(engine, USER_QUERY, {"user": int(users[0])})
    print(
        f"{label}: production_recommendations for one user ({rows} rows): median"
        f" {statistics.median(ms):.1f} ms, p95 {_p95(ms):.1f} ms over {args.queries} queries"
        f" ({plan}); load average {_load()}"
    )


def _movie_queries(engine: sa.Engine, n_items: int, queries: int, rng: np.random.Generator) -> None:
    movies = rng.integers(1, n_items + 1, queries)
    ms, rows = _timed(engine, MOVIE_QUERY, [{"movie": int(m)} for m in movies])
    print(
        f"production_similar_items for one movie ({rows} rows): median"
        f" {statistics.median(ms):.1f} ms, p95 {_p95(ms):.1f} ms over {queries} queries"
    )


def _literal_version(
    engine: sa.Engine, version: str, n_users: int, queries: int, rng: np.random.Generator
) -> None:
    """The same list read with the version as a constant, which the planner prunes to one
    partition: what ``recsys-job recommend`` does after resolving the alias."""
    query = sa.text(
        "SELECT rank, movie_id, title, score FROM published_recommendations"
        " WHERE version = :version AND user_id = :user ORDER BY rank"
    )
    users = rng.integers(1, n_users + 1, queries)
    ms, rows = _timed(engine, query, [{"version": version, "user": int(u)} for u in users])
    plan = _explain(engine, query, {"version": version, "user": int(users[0])})
    print(
        f"published_recommendations for one user of a named version ({rows} rows): median"
        f" {statistics.median(ms):.1f} ms, p95 {_p95(ms):.1f} ms ({plan})"
    )


def _prune(engine: sa.Engine) -> None:
    """``prune --keep 1``: every version but the newest, one transaction each (also what lets
    the scratch schema go: dropping thousands of tables at once overflows the lock table)."""
    started = time.perf_counter()
    with engine.connect() as conn:
        planned = pruning.plan(conn, 1)
    removed = pruning.execute(engine, planned).removed
    seconds = time.perf_counter() - started
    print(f"prune --keep 1: removed {len(removed)} versions in {seconds:.1f} s")


def _versions(scratch: Scratch, count: int) -> None:
    """``list_versions`` on a new connection each time (a new server process, whose catalog
    caches start cold, as the command's does), then on the same one; and the command."""
    cold, warm = [], []
    for _ in range(5):
        fresh = scratch.engine()
        try:
            with fresh.connect() as conn:
                for calls in (cold, warm):
                    started = time.perf_counter()
                    listed = list_versions(conn)
                    calls.append(time.perf_counter() - started)
        finally:
            fresh.dispose()
    assert len(listed) == count, len(listed)
    print(
        f"list_versions (library, {count} versions): median {statistics.median(cold):.2f} s on a"
        f" new connection, {statistics.median(warm):.2f} s again on it (5 connections)"
    )
    for args in (["versions"], ["versions", "--json"], ["--version"]):
        child = scratch.job(args, quiet=True)
        what = "process start only" if args == ["--version"] else f"{count} versions"
        print(f"recsys-job {' '.join(args)}: {child.seconds:.2f} s wall ({what})")


def _timed(engine: sa.Engine, query: sa.TextClause, params: list[dict]) -> tuple[list[float], int]:
    """Each query's milliseconds on one connection, and the rows of the last."""
    ms, rows = [], 0
    with engine.connect() as conn:
        _search_path(conn)
        for values in params:
            started = time.perf_counter()
            rows = len(conn.execute(query, values).all())
            ms.append(1000 * (time.perf_counter() - started))
            conn.rollback()
    return ms, rows


def _explain(engine: sa.Engine, query: sa.TextClause, params: dict) -> str:
    """Planning and execution time as EXPLAIN ANALYZE reports them."""
    with engine.connect() as conn:
        _search_path(conn)
        lines = conn.execute(sa.text(f"EXPLAIN (ANALYZE) {query.text}"), params).scalars().all()
    times = [line for line in lines if line.startswith(("Planning Time", "Execution Time"))]
    return ", ".join(t.lower().replace(" time:", "") for t in times)


def _search_path(conn: sa.Connection) -> None:
    """Unqualified names resolve in the scratch schema for this session, as for an analyst
    with ``PGOPTIONS='-c search_path=...'``."""
    conn.execute(sa.select(sa.func.set_config("search_path", schema_of(conn), False)))
    conn.commit()


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else values[0]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
