"""A run's memory estimate (``recsys/memory.py``) against the peak RSS it measured, at small sizes.

For each size (default 50K, 200K and 800K interactions of the default shape: 2,500 users × 4,000
items, 10K × 8,424, 40K × 17,740): a database of its own with the synthetic interactions
ingested (``bench/scale.py``'s), then ``recsys-job run --epochs 1`` as a child process. Prints the
estimate term by term, from the counts the run recorded, its sum, the run's own peak RSS (from
``wait4``) and their ratio. At these sizes the fixed 1 GiB (TensorFlow's runtime and a scoring
block) dominates the estimate.

    python bench/memory_estimate.py [--sizes 50000 200000 800000]
        [--server-url postgresql://postgres@127.0.0.1:5432/postgres] [-- run options]
"""

import argparse
import os

import sqlalchemy as sa
from scale import SCHEMA, ingested, registry, run_job

from recsys import memory
from recsys.storage import database, schema

VERSION = "memory"
MIB = 1 << 20


def one_size(server: sa.engine.URL, n: int, run_options: list[str]) -> None:
    with ingested(server, n, f"recsys_memory_{n}", keep=False) as data:
        options = ["--schema", SCHEMA, "run", "--model-version", VERSION, "--epochs", "1"]
        run = run_job(data.url, data.db_name, [*options, *run_options])
        (_, stats), _ = registry(data.url, VERSION)
        dim = _params(data.url)["dim"]
    terms = memory.estimate_terms(
        stats["users"], stats["items"], stats["train_interactions"], stats["ratings_read"], dim
    )
    estimate = sum(terms.values())
    assert estimate >> 20 == stats["memory_estimate_mib"], "the run estimated otherwise"
    shown = ", ".join(f"{name} {size / MIB:,.1f}" for name, size in terms.items())
    print(
        f"{stats['interactions']:>9,} interactions, {stats['users']:,} users × "
        f"{stats['items']:,} items, dim {dim}: estimate {estimate / MIB:,.0f} MiB ({shown}), "
        f"peak RSS {run.peak_mib:,.0f} MiB, peak / estimate {run.peak_mib * MIB / estimate:.2f}",
        flush=True,
    )


def _params(url: str) -> dict:
    engine = database.connect(database.parse_url(url), SCHEMA)
    with engine.connect() as conn:
        versions = schema.model_versions
        query = sa.select(versions.c.params).where(versions.c.name == VERSION)
        params = conn.execute(query).scalar_one()
    engine.dispose()
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 800_000])
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("run_options", nargs="*", help="extra options for recsys-job run")
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before: {load}")
    for n in args.sizes:
        one_size(database.parse_url(args.server_url), n, args.run_options)


if __name__ == "__main__":
    main()
