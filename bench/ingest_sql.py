"""``ingest sql`` throughput against a plain ``INSERT … SELECT`` of the same rows.

A scratch database gets a source table ``src.interactions`` (user_id, item_id, rating, rated_at;
20 distinct items per user), made inside the server with ``generate_series``. The same rows are
then loaded twice, each into a fresh migrated schema:

- plain: what a DBA would write by hand, in one transaction: the distinct users and movies, then
  ``INSERT INTO ratings SELECT … FROM src.interactions`` into the table as recsys declares it
  (primary key, foreign keys, index); no check beyond the constraints, nothing reported.
- recsys: ``recsys-job ingest sql --ratings-table src.interactions``, in this process: the
  read-only staging, the checks, placeholder users and movies, the merge and its report.

The ratio is recsys throughput over plain's: above 1, recsys is faster. Printed, not asserted.

    python bench/ingest_sql.py [--rows 1000000] [--database-url URL]   # 20M: --rows 20000000
"""

import argparse
import os
import time
import uuid

import sqlalchemy as sa
from click.testing import CliRunner

from recsys.storage import database, migrate
from recsys_jobs.cli import main as recsys_job

ITEMS_PER_USER = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=20_000, help="distinct movies")
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    args = parser.parse_args()
    server = database.resolve(args.database_url).url
    scratch = f"bench_ingest_sql_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
    url = server.set(database=scratch)
    try:
        made = _source(url, args.rows, args.items)
        plain = _plain(url)
        ours = _recsys(url)
        rate = args.rows / plain, args.rows / ours
        print(f"source table made in {made:.1f} s ({args.rows:,} rows)")
        print(f"plain INSERT … SELECT: {plain:.1f} s ({rate[0]:,.0f} rows/s)")
        print(f"ingest sql:            {ours:.1f} s ({rate[1]:,.0f} rows/s)")
        print(f"ratio (ingest sql / plain throughput): {rate[1] / rate[0]:.2f}")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


def _source(url: sa.URL, rows: int, items: int) -> float:
    """``src.interactions``: user i // 20 rates 20 distinct items; seconds taken."""
    started = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA src"))
        conn.execute(
            sa.text(
                "CREATE TABLE src.interactions AS SELECT i / :per AS user_id,"
                " (i % :per) + :per * ((i / :per) % (:items / :per)) AS item_id,"
                " (1 + i % 5)::real AS rating,"
                " timestamptz '2020-01-01' + i * interval '1 second' AS rated_at"
                " FROM generate_series(0, :rows - 1) AS i"
            ),
            {"per": ITEMS_PER_USER, "items": items, "rows": rows},
        )
        conn.execute(sa.text("ANALYZE src.interactions"))
    engine.dispose()
    return time.perf_counter() - started


def _fresh(url: sa.URL, name: str) -> sa.Engine:
    engine = database.connect(url, name)
    migrate.upgrade(engine, name)
    return engine


def _plain(url: sa.URL) -> float:
    engine = _fresh(url, "plain")
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in (
            "INSERT INTO plain.users (user_id) SELECT DISTINCT user_id FROM src.interactions",
            "INSERT INTO plain.movies (movie_id, title)"
            " SELECT DISTINCT item_id, 'Item ' || item_id FROM src.interactions",
            "INSERT INTO plain.ratings (user_id, movie_id, rating, rated_at)"
            " SELECT user_id, item_id, rating, rated_at FROM src.interactions",
        ):
            conn.execute(sa.text(statement))
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def _recsys(url: sa.URL) -> float:
    _fresh(url, "ours").dispose()
    plain_url = url.render_as_string(hide_password=False)
    started = time.perf_counter()
    result = CliRunner().invoke(
        recsys_job,
        ["--database-url", plain_url, "--schema", "ours", "ingest", "sql",
         "--ratings-table", "src.interactions"],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"ingest sql failed: {result.output}")
    print(result.stdout.strip())
    return seconds


if __name__ == "__main__":
    main()
