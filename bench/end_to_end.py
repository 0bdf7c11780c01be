"""End-to-end figures for `recsys-job run` on ML-100K: wall seconds and peak memory.

Ingests ML-100K into a scratch schema of the database given (``--database-url`` or
``RECSYS_DATABASE_URL``; default: the embedded server), then times ``recsys-job run`` as a child
process and reports its peak resident memory. The scratch schema is dropped afterwards.

    python bench/end_to_end.py [--data ../shared/data/ml-100k] [--database-url URL] [-- run options]
"""

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from recsys.storage import database

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    parser.add_argument("run_options", nargs="*", help="extra options for recsys-job run")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no MovieLens data at {args.data}; pass --data")

    target = database.resolve(args.database_url)
    url = target.url.render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    job = [sys.executable, "-m", "recsys_jobs", "--database-url", url, "--schema", schema]
    print(f"database: {target.describe()}, scratch schema {schema}")
    try:
        subprocess.run([*job, "db", "upgrade"], check=True, capture_output=True)
        subprocess.run([*job, "ingest", "movielens", str(args.data)], check=True)
        started = time.perf_counter()
        subprocess.run([*job, "run", "--model-version", "bench", *args.run_options], check=True)
        wall = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"recsys-job run on {args.data.name}: {wall:.1f} s wall, peak RSS {peak_mib:.0f} MiB")
    finally:
        engine = sa.create_engine(target.url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


if __name__ == "__main__":
    main()
