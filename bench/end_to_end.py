"""End-to-end figures for `recsys-job` on ML-100K: wall seconds and peak memory of each command.

In a scratch schema of the database given (``--database-url`` or ``RECSYS_DATABASE_URL``; default:
the embedded server) runs ``db upgrade``, ``ingest movielens`` and ``run`` as child processes, each
reported with its own peak resident memory; then times how soon a second ``run`` of a version
that another session holds is refused (exit 5; the process start is included). The scratch schema
is dropped afterwards.

    python bench/end_to_end.py [--data ../shared/data/ml-100k] [--database-url URL] [-- run options]
"""

import argparse
import os
import sys
from pathlib import Path

from _scratch import scratch_schema

from recsys.errors import VersionConflict
from recsys.versions import registry

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    parser.add_argument("run_options", nargs="*", help="extra options for recsys-job run")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no MovieLens data at {args.data}; pass --data")

    with scratch_schema(args.database_url) as scratch:
        steps = {
            "db upgrade": (["db", "upgrade"], True),
            "ingest movielens": (["ingest", "movielens", str(args.data)], False),
            "run": (["run", "--model-version", "bench", *args.run_options], False),
        }
        figures = {
            name: scratch.job(command, quiet=quiet) for name, (command, quiet) in steps.items()
        }
        print(f"\non {args.data.name}:")
        for name, child in figures.items():
            print(f"  {name}: {child.seconds:.1f} s wall, peak RSS {child.peak_mib:.0f} MiB")

        engine = scratch.engine()
        claim = registry.acquire(engine, "held", replace=False)
        try:
            refused = scratch.job(["run", "--model-version", "held"], quiet=True, check=False)
        finally:
            claim.release()
            engine.dispose()
        if refused.returncode != VersionConflict.exit_code:
            sys.exit(f"the run of a held version ended with exit {refused.returncode}, not 5")
        print(f"  run of a version another session holds: refused after {refused.seconds:.1f} s")


if __name__ == "__main__":
    main()
