"""Scoring and writing every user's recommendations: the local path against Ray workers.

Throughput: a synthetic set of ``--users`` users (default 500K) and ``--items`` items (50K),
each user's rated items drawn by the scale generator (recsys.synthetic.interactions,
``--per-user`` a user on average, all excluded from their lists), random embeddings of dim 64,
k 10. The same lists are scored and written into a run's table three ways, each in a child
process of its own: the local path (what a run does inside its publishing transaction, with
TensorFlow on every core), and ``run --ray``'s path with 1 and with 2 workers of 1 CPU on a
local Ray of 2 CPUs (started before the clock). As a run does, the Ray children start their
workers first (recsys.scale_out.RayScoring.started, which a run calls as it begins, so that the
workers start while it trains) and wait for them (WorkerPool.ready: the workers' start,
TensorFlow's import and their connection, printed on its own); then the scoring and writing is
timed (WorkerPool.written, as in a run). Printed side by side: seconds, rows per second, the
workers' start, when the first shard was done, the peak RSS of the driver and of the largest
worker; and the ratio 2 workers / 1 worker, without and with the workers' start (the latter is
what a run sees whose training is shorter than that start).

Fixed overhead: on ML-100K, ``recsys-job run`` without and with ``--ray local`` (same seed, each a
child process): wall seconds and the recorded ``train`` and ``score`` phases of each, and the
differences (the workers start during training, on the cores it trains on).

Everything goes into a scratch schema of the database given (``--database-url`` or
``RECSYS_DATABASE_URL``; default: the embedded server), dropped afterwards.

    python bench/ray_scoring.py [--users 500000] [--items 50000] [--per-user 20]
        [--users-per-shard 50000] [--data ../shared/data/ml-100k] [--skip-ml100k]
        [--database-url URL] [-- run options for the ML-100K runs]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from _scratch import Scratch, scratch_schema

from recsys.memory import peak_rss_bytes
from recsys.scoring.recommender import Recommender
from recsys.storage import database, schema
from recsys.synthetic.interactions import interaction_chunks
from recsys.versions import registry

REPO = Path(__file__).resolve().parents[1]
K, DIM = 10, 64
VARIANTS = ("local", "ray:1", "ray:2")
#: The recorded phases the ML-100K runs compare: the workers start during the first.
PHASES = ("train", "score")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--users-per-shard", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--skip-ml100k", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("RECSYS_DATABASE_URL"))
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # a child's
    parser.add_argument("--arrays", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("run_options", nargs="*", help="extra options for the ML-100K runs")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(_child(args)))
        return
    with scratch_schema(args.database_url) as scratch:
        scratch.job(["db", "upgrade"], quiet=True)
        _throughput(args, scratch)
        if not args.skip_ml100k:
            _overhead(args, scratch)


def _throughput(args: argparse.Namespace, scratch: Scratch) -> None:
    with tempfile.TemporaryDirectory() as folder:
        arrays = Path(folder) / "recommender.npz"
        started = time.perf_counter()
        _save(_synthetic(args.users, args.items, args.per_user), arrays)
        print(
            f"\n{args.users:,} users × {args.items:,} items (dim {DIM}, k {K}, "
            f"{args.per_user} rated items a user on average, excluded): made in "
            f"{time.perf_counter() - started:.1f} s"
        )
        figures = {variant: _variant(args, scratch, arrays, variant) for variant in VARIANTS}
    print(
        f"{'path':<22}{'seconds':>9}{'rows/s':>12}{'start':>8}{'1st shard':>11}"
        f"{'driver RSS':>12}{'worker RSS':>12}"
    )
    names = {"local": "local (TF, all cores)", "ray:1": "ray, 1 worker", "ray:2": "ray, 2 workers"}
    for variant, f in figures.items():
        start = f"{f['start_s']:.1f} s" if f["start_s"] is not None else "-"
        first = f"{f['first_shard_s']:.1f} s" if f["first_shard_s"] else "-"
        worker = f"{f['worker_peak_mib']:.0f} MiB" if f["worker_peak_mib"] else "-"
        print(
            f"{names[variant]:<22}{f['seconds']:>9.1f}{f['rows'] / f['seconds']:>12,.0f}"
            f"{start:>8}{first:>11}{f['driver_peak_mib']:>8.0f} MiB{worker:>12}"
        )
    one, two = figures["ray:1"], figures["ray:2"]
    ratio = one["seconds"] / two["seconds"]
    print(f"2 workers / 1 worker: {ratio:.2f}× the throughput; load average {_load()}")
    with_start = (one["seconds"] + one["start_s"]) / (two["seconds"] + two["start_s"])
    print(f"  counting the workers' start too: {with_start:.2f}× (a run that trains for less)")


def _variant(args: argparse.Namespace, scratch: Scratch, arrays: Path, variant: str) -> dict:
    """One way of scoring and writing, in a child process; its figures."""
    url = scratch.target.url.render_as_string(hide_password=False)
    command = [
        sys.executable,
        __file__,
        "--variant",
        variant,
        "--arrays",
        str(arrays),
        "--schema",
        scratch.schema,
        "--users-per-shard",
        str(args.users_per_shard),
    ]
    environment = {**os.environ, "RECSYS_DATABASE_URL": url, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(args: argparse.Namespace) -> dict:
    """Score and write the saved lists one way; the seconds, rows and peak memory."""
    recommender = _load_arrays(args.arrays)
    engine = database.connect(database.resolve(None).url, args.schema)
    claim = registry.acquire(engine, args.variant.replace(":", "-"), replace=False)
    registry.start(engine, claim, {})
    watcher, first_shard, start_seconds = None, [], None
    try:
        if args.variant == "local":
            from recsys.scoring.outputs import write_recommendations
            from recsys.versions.publish import RunTables

            started = time.perf_counter()
            with engine.begin() as conn:
                write_recommendations(RunTables(conn, claim), recommender)
            seconds = time.perf_counter() - started
        else:
            import ray

            from recsys.scale_out.sharded_scoring import RayScoring

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            watcher = _WorkerWatcher()
            watcher.start()
            scoring = RayScoring(
                workers=int(args.variant[4:]),
                users_per_shard=args.users_per_shard,
                on_shard=lambda _done, _total: first_shard.append(time.perf_counter()),
            )
            with scoring.started(engine, lambda line: None) as workers:
                start_seconds = workers.ready()
                started = time.perf_counter()
                with workers.written(engine, claim, recommender, lambda line: None):
                    seconds = time.perf_counter() - started
            watcher.stop()
            ray.shutdown()
        with engine.connect() as conn:
            table = f'"{args.schema}"."{schema.recommendations.name}_r{claim.run_id}"'
            rows = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        claim.release()
        engine.dispose()
    return {
        "seconds": seconds,
        "rows": rows,
        "start_s": start_seconds,
        "first_shard_s": first_shard[0] - started if first_shard else None,
        "driver_peak_mib": peak_rss_bytes() / 2**20,
        "worker_peak_mib": watcher.peak_bytes / 2**20 if watcher else 0,
    }


class _WorkerWatcher(threading.Thread):
    """The largest resident memory any shard-writing Ray worker reaches (polled)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._done = threading.Event()
        self.peak_bytes = 0

    def run(self) -> None:
        import psutil  # a dependency of ray

        while not self._done.wait(0.5):
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                cmdline = " ".join(process.info["cmdline"] or ())
                if "ShardWriter" in cmdline and process.info["memory_info"] is not None:
                    self.peak_bytes = max(self.peak_bytes, process.info["memory_info"].rss)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _overhead(args: argparse.Namespace, scratch: Scratch) -> None:
    if not args.data.exists():
        sys.exit(f"no MovieLens data at {args.data}; pass --data or --skip-ml100k")
    scratch.job(["ingest", "movielens", str(args.data)], quiet=True)
    runs = {
        "without --ray": ["--model-version", "plain"],
        "with --ray local": ["--model-version", "on-ray", "--ray", "local"],
    }
    walls = {
        name: scratch.job(["run", "--seed", "1", *options, *args.run_options], quiet=True)
        for name, options in runs.items()
    }
    engine = scratch.engine()
    with engine.connect() as conn:
        versions = schema.model_versions
        phases = dict(conn.execute(sa.select(versions.c.name, versions.c.phase_seconds)).all())
    engine.dispose()
    print(f"\nRay's fixed overhead on {args.data.name} (recsys-job run, each its own process):")
    for (name, child), version in zip(walls.items(), ("plain", "on-ray"), strict=True):
        print(
            f"  {name}: {child.seconds:.1f} s wall, train phase {phases[version]['train']:.1f} s, "
            f"score phase {phases[version]['score']:.1f} s, peak RSS {child.peak_mib:.0f} MiB"
        )
    plain, on_ray = walls.values()
    added = {phase: phases["on-ray"][phase] - phases["plain"][phase] for phase in PHASES}
    print(
        f"  --ray local adds {on_ray.seconds - plain.seconds:.1f} s to the run "
        f"({added['train']:.1f} s to the train phase, {added['score']:.1f} s to the score "
        f"phase); load average {_load()}"
    )


def _synthetic(n_users: int, n_items: int, per_user: int) -> Recommender:
    """Random embeddings; every user's rated items (excluded) from the scale generator."""
    users, items = [], []
    for chunk in interaction_chunks(n_users * per_user, n_users, n_items, ratings=False):
        users.append(chunk.user_id - 1)
        items.append(chunk.item_id - 1)
    user, item = np.concatenate(users), np.concatenate(items)
    exclude = sp.csr_matrix(
        (np.ones(len(user), bool), (user, item)), shape=(n_users, n_items), dtype=bool
    )
    rng = np.random.default_rng(0)
    return Recommender(
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        item_ids=np.arange(1, n_items + 1, dtype=np.int64),
        user_emb=rng.standard_normal((n_users, DIM), dtype=np.float32),
        item_emb=rng.standard_normal((n_items, DIM), dtype=np.float32),
        popularity=np.bincount(item, minlength=n_items).astype(np.float32),
        trained=np.ones(n_users, bool),
        exclude=exclude,
        k=K,
    )


def _save(recommender: Recommender, path: Path) -> None:
    exclude = recommender.exclude
    np.savez(
        path,
        user_ids=recommender.user_ids,
        item_ids=recommender.item_ids,
        user_emb=recommender.user_emb,
        item_emb=recommender.item_emb,
        popularity=recommender.popularity,
        trained=recommender.trained,
        exclude_indptr=exclude.indptr,
        exclude_indices=exclude.indices,
        exclude_shape=np.array(exclude.shape),
    )


def _load_arrays(path: Path) -> Recommender:
    saved = np.load(path)
    indices = saved["exclude_indices"]
    exclude = sp.csr_matrix(
        (np.ones(len(indices), bool), indices, saved["exclude_indptr"]),
        shape=tuple(saved["exclude_shape"]),
    )
    names = ("user_ids", "item_ids", "user_emb", "item_emb", "popularity", "trained")
    return Recommender(**{name: saved[name] for name in names}, exclude=exclude, k=K)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
