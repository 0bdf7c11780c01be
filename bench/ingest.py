"""Ingest throughput against a raw COPY of the same rows, and the memory of the snapshot.

For each size, one synthetic ratings file (``bench/generate.py``'s, made first unless it exists)
is loaded twice, each time into a fresh schema of a scratch database, each load in a child
process that times its own work and reports its own peak RSS:

- reference: the floor of issue 11. The file is COPYed (text) into a temporary staging table;
  users and placeholder movies are inserted from its distinct ids; the ratings are inserted with
  ``INSERT … SELECT`` while the two foreign keys are dropped, then added back, which validates
  them once for the whole load. Same tables, keys, constraints and indexes as recsys; no check
  of the input beyond what the column types do, nothing reported.
- recsys: ``recsys-job ingest csv --ratings FILE``, run in-process by the child.

Then a child reads the snapshot of the recsys schema (``read_snapshot``, what a run reads first)
and reports the increase of its peak RSS during the call and the nbytes of the arrays.
The ratio is recsys throughput over the reference's: above 1, recsys is faster. Figures are
printed, not asserted; run sizes one at a time on a busy machine.

    python bench/ingest.py [--sizes 1m,20m] [--data-dir /tmp] [--database-url URL] [--keep]
        [--file ../shared/data/amazon-book-sample/interactions.csv]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql

from recsys.storage import database, migrate

SIZES = {"1m": 1_000_000, "5m": 5_000_000, "20m": 20_000_000}
BLOCK = 8 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,20m", help=f"comma-separated, of {list(SIZES)}")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--file", type=Path, action="append", default=[], help="also this file")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SCHEMA", "FILE"))
    args = parser.parse_args()
    if args.child:  # the database URL comes in the environment, off the command line
        kind, schema, path = args.child
        url = os.environ["RECSYS_DATABASE_URL"]
        print(json.dumps(CHILDREN[kind](url, schema, Path(path))))
        return

    server = database.resolve(args.database_url).url
    scratch = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
    url = server.set(database=scratch)
    rows = []
    try:
        for size in filter(None, args.sizes.split(",")):
            path = args.data_dir / f"bench_ingest_{size}.csv"
            rows.append(_measure(size, path, SIZES[size], url, args.keep))
        for path in args.file:
            rows.append(_measure(path.stem.replace("-", "_"), path, None, url, keep=True))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()
    _table(rows)


def _measure(size: str, path: Path, interactions: int | None, url: sa.URL, keep: bool) -> dict:
    """Both loads of ``path`` (generated first with ``interactions`` if it does not exist)."""
    made = not path.exists()
    generated = None
    if made:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("generate.py")), "--interactions",
             str(interactions), "--out", str(path)],
            check=True,
        )  # fmt: skip
        generated = time.perf_counter() - started
    plain = url.render_as_string(hide_password=False).replace("+psycopg", "")
    try:
        result = {"size": size, "generated": generated}
        for kind in ("reference", "recsys"):
            schema = f"{kind}_{size}"
            engine = database.connect(url, schema)
            migrate.upgrade(engine, schema)
            engine.dispose()
            result[kind] = _child(kind, plain, schema, path)
            print(f"{size} {kind}: {result[kind]}", flush=True)
        result["same"], result["rows"] = _same_rows(plain, f"reference_{size}", f"recsys_{size}")
        result["snapshot"] = _child("snapshot", plain, f"recsys_{size}", path)
        print(f"{size} snapshot: {result['snapshot']}", flush=True)
        return result
    finally:
        if made and not keep:
            path.unlink()


def _child(kind: str, url: str, schema: str, path: Path) -> dict:
    """Run ``kind`` in a process of its own; its last line of output is its figures."""
    command = [sys.executable, __file__, "--child", kind, schema, str(path)]
    environment = {**os.environ, "RECSYS_DATABASE_URL": url}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reference(url: str, schema: str, path: Path) -> dict:
    """The floor: staging COPY, distinct users and movies, ratings with the foreign keys
    validated once."""
    with path.open("rb") as fh:
        header = fh.readline().decode().strip().split(",")
    names = {"user_id": "user_id", "item_id": "movie_id", "movie_id": "movie_id"}
    names |= {"rating": "rating", "timestamp": "ts"}
    columns = [names[name] for name in header]
    types = {"user_id": "bigint", "movie_id": "bigint", "rating": "real", "ts": "bigint"}
    rating = "rating" if "rating" in columns else "NULL"
    rated_at = "to_timestamp(ts)" if "ts" in columns else "NULL"
    ratings = sql.Identifier(schema, "ratings")
    users, movies = sql.Identifier(schema, "users"), sql.Identifier(schema, "movies")
    steps: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:

        def step(name: str, statement: sql.Composable) -> None:
            begun = time.perf_counter()
            cursor.execute(statement)
            steps[name] = round(time.perf_counter() - begun, 2)

        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE stage ({}) ON COMMIT DROP").format(
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns
                )
            )
        )
        begun = time.perf_counter()
        with (
            path.open("rb") as fh,
            cursor.copy("COPY stage FROM STDIN (FORMAT csv, HEADER)") as copy,
        ):
            while block := fh.read(BLOCK):
                copy.write(block)
        steps["copy"] = round(time.perf_counter() - begun, 2)
        step(
            "users",
            sql.SQL("INSERT INTO {} (user_id) SELECT DISTINCT user_id FROM stage").format(users),
        )
        step(
            "movies",
            sql.SQL(
                "INSERT INTO {} (movie_id, title)"
                " SELECT DISTINCT movie_id, 'Item ' || movie_id FROM stage"
            ).format(movies),
        )
        step(
            "drop fks",
            sql.SQL(
                "ALTER TABLE {} DROP CONSTRAINT ratings_user_fk, DROP CONSTRAINT ratings_movie_fk"
            ).format(ratings),
        )
        step(
            "insert",
            sql.SQL(
                "INSERT INTO {} (user_id, movie_id, rating, rated_at)"
                " SELECT user_id, movie_id, {}, {} FROM stage"
            ).format(ratings, sql.SQL(rating), sql.SQL(rated_at)),
        )
        step(
            "add fks",
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT ratings_user_fk FOREIGN KEY (user_id)"
                " REFERENCES {}, ADD CONSTRAINT ratings_movie_fk FOREIGN KEY (movie_id)"
                " REFERENCES {}"
            ).format(ratings, users, movies),
        )
        begun = time.perf_counter()
        conn.commit()
        steps["commit"] = round(time.perf_counter() - begun, 2)
    return {"seconds": time.perf_counter() - started, "peak_mib": _peak_mib(), "steps": steps}


def _recsys(url: str, schema: str, path: Path) -> dict:
    """``recsys-job ingest csv`` in this process, timed from the command's start."""
    from recsys_jobs.cli import main

    started = time.perf_counter()
    main(["--schema", schema, "ingest", "csv", "--ratings", str(path)], standalone_mode=False)
    return {"seconds": time.perf_counter() - started, "peak_mib": _peak_mib()}


def _snapshot(url: str, schema: str, path: Path) -> dict:
    """``read_snapshot`` of the ingested schema: seconds, arrays' bytes, peak RSS increase."""
    import numpy as np

    from recsys.data.snapshot import read_snapshot

    engine = database.connect(database.parse_url(url), schema)
    before = _rss_mib()
    started = time.perf_counter()
    snapshot = read_snapshot(engine)
    seconds = time.perf_counter() - started
    arrays = [v for v in vars(snapshot).values() if isinstance(v, np.ndarray)]
    return {
        "seconds": seconds,
        "interactions": len(snapshot.user),
        "arrays_mib": sum(a.nbytes for a in arrays) / 2**20,
        "rss_before_mib": before,
        "peak_increase_mib": _peak_mib() - before,
    }


def _rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _same_rows(url: str, one: str, other: str) -> tuple[bool, int]:
    """Whether two schemas' ratings hold the same rows: the count, and the sum of a hash of each
    whole row (exact and independent of the order rows are stored in)."""
    query = sql.SQL(
        "SELECT count(*), sum(hashtext(concat_ws(':', user_id, movie_id, rating, rated_at)))"
        " FROM {}"
    )
    with psycopg.connect(url) as conn:
        found = [
            conn.execute(query.format(sql.Identifier(name, "ratings"))).fetchone()
            for name in (one, other)
        ]
    return found[0] == found[1], found[0][0]


CHILDREN = {"reference": _reference, "recsys": _recsys, "snapshot": _snapshot}


def _table(rows: list[dict]) -> None:
    print()
    print(
        f"{'input':>12} {'rows':>11} {'gen s':>6} {'ref s':>7} {'ref rows/s':>11} "
        f"{'recsys s':>8} {'rows/s':>10} {'ratio':>6} {'ingest peak':>11} {'ref peak':>8} "
        f"{'same':>4}"
    )
    for row in rows:
        ref, ours = row["reference"], row["recsys"]
        n = row["rows"]
        generated = "-" if row["generated"] is None else f"{row['generated']:.1f}"
        print(
            f"{row['size']:>12} {n:>11,} {generated:>6} {ref['seconds']:>7.1f} "
            f"{n / ref['seconds']:>11,.0f} {ours['seconds']:>8.1f} {n / ours['seconds']:>10,.0f} "
            f"{ref['seconds'] / ours['seconds']:>6.2f} {ours['peak_mib']:>8.0f} MiB "
            f"{ref['peak_mib']:>4.0f} MiB {'yes' if row['same'] else 'NO':>4}"
        )
    print()
    print(
        f"{'input':>12} {'snapshot s':>10} {'interactions':>12} {'arrays':>10} "
        f"{'RSS before':>10} {'peak increase':>13}"
    )
    for row in rows:
        snap = row["snapshot"]
        print(
            f"{row['size']:>12} {snap['seconds']:>10.1f} {snap['interactions']:>12,} "
            f"{snap['arrays_mib']:>6.0f} MiB {snap['rss_before_mib']:>6.0f} MiB "
            f"{snap['peak_increase_mib']:>9.0f} MiB"
        )


if __name__ == "__main__":
    main()
