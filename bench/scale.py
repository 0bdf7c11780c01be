"""End to end at scale: generate → ingest → run, at several sizes, each in its own database.

For each size (default 1M, 5M and 20M interactions; 20M is 1M users × 100K items, the sizes of
``recsys.synthetic.interactions.default_shape``): writes the synthetic ratings file, creates
a database, and runs ``recsys-job db upgrade``, ``ingest csv`` and ``run`` as child processes.
Prints per phase the seconds, rows per second and peak memory: each child's own peak RSS (from
``wait4``), the PostgreSQL backend's serving it (VmHWM, polled while it runs), and the run's phases
as it recorded them in the registry, with its memory estimate beside its measured peak.

    python bench/scale.py [--sizes 1000000 5000000 20000000] [--epochs-at-20m 2]
        [--server-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep] [-- run options]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from recsys.storage import database, schema
from recsys.synthetic.interactions import default_shape, interaction_chunks, write_csv

SCHEMA = "recsys"


@dataclass(frozen=True)
class Child:
    """A finished ``recsys-job`` process: seconds, its own peak RSS, its backend's peak."""

    seconds: float
    peak_mib: float
    backend_peak_mib: float


def run_job(url: str, db_name: str, args: list[str]) -> Child:
    """``recsys-job ARGS`` against ``url``, to its end; raises if it fails."""
    command = [sys.executable, "-m", "recsys_jobs", *args]
    env = {**os.environ, "RECSYS_DATABASE_URL": url}  # not on the command line
    watcher = _BackendWatcher(url, db_name)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    watcher.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"recsys-job {' '.join(args)} failed (exit {status >> 8})")
    return Child(seconds, usage.ru_maxrss / 1024, watcher.peak_kib / 1024)


class _BackendWatcher(threading.Thread):
    """Polls the peak resident memory (VmHWM) of the PostgreSQL backends serving recsys-job
    on ``db_name``; readable where the bench runs on the database's machine as its owner or
    root, and reported as 0 otherwise."""

    def __init__(self, url: str, db_name: str) -> None:
        super().__init__(daemon=True)
        self._engine = sa.create_engine(database.parse_url(url))
        self._db_name = db_name
        self._done = threading.Event()
        self.peak_kib = 0

    def run(self) -> None:
        query = sa.text(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = :db AND application_name = 'recsys-job'"
        )
        with self._engine.connect() as conn:
            while not self._done.wait(0.5):
                for pid in conn.execute(query, {"db": self._db_name}).scalars():
                    self.peak_kib = max(self.peak_kib, _vm_hwm_kib(pid))
                conn.rollback()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self._engine.dispose()


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Ingested:
    """A database holding ``rows`` synthetic interactions, and what generating and ingesting
    them took."""

    url: str
    db_name: str
    rows: int
    generate_seconds: float
    ingest: Child


@contextmanager
def ingested(server: sa.engine.URL, n: int, db_name: str, keep: bool) -> Iterator[Ingested]:
    """A fresh database ``db_name`` with ``n`` synthetic interactions of the default shape
    ingested by ``recsys-job``; dropped after the block unless ``keep``."""
    n_users, n_items = default_shape(n)
    url = server.set(database=db_name).render_as_string(hide_password=False)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "ratings.csv"
            started = time.perf_counter()
            rows = write_csv(path, interaction_chunks(n, n_users, n_items))
            generate = time.perf_counter() - started
            run_job(url, db_name, ["--schema", SCHEMA, "db", "upgrade"])
            ingest = run_job(
                url, db_name, ["--schema", SCHEMA, "ingest", "csv", "--ratings", str(path)]
            )
        yield Ingested(url, db_name, rows, generate, ingest)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def one_size(
    server: sa.engine.URL, n: int, epochs: int | None, run_options: list[str], keep: bool
) -> None:
    n_users, n_items = default_shape(n)
    with ingested(server, n, f"recsys_scale_{n // 1_000_000}m", keep) as data:
        options = [*(["--epochs", str(epochs)] if epochs else []), *run_options]
        run = run_job(
            data.url,
            data.db_name,
            ["--schema", SCHEMA, "run", "--model-version", "scale", *options],
        )
        rows, generate, ingest = data.rows, data.generate_seconds, data.ingest
        _print(n, n_users, n_items, rows, generate, ingest, run, registry(data.url))


def registry(url: str, version: str = "scale") -> tuple[sa.Row, int]:
    """The version's phase seconds and data stats, and how many recommendations it wrote."""
    engine = database.connect(database.parse_url(url), SCHEMA)
    with engine.connect() as conn:
        versions, recs = schema.model_versions, schema.recommendations
        row = conn.execute(
            sa.select(versions.c.phase_seconds, versions.c.data_stats).where(
                versions.c.name == version
            )
        ).one()
        written = conn.execute(
            sa.select(sa.func.count()).select_from(recs).where(recs.c.version == version)
        ).scalar_one()
    engine.dispose()
    return row, written


def _print(n, n_users, n_items, rows, generate, ingest: Child, run: Child, registry) -> None:
    (phases, stats), written = registry
    print(
        f"\n{rows:,} interactions, {n_users:,} users × {n_items:,} items "
        f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    print(f"  generate  {generate:8.1f} s  {rows / generate:>12,.0f} rows/s")
    print(
        f"  ingest    {ingest.seconds:8.1f} s  {rows / ingest.seconds:>12,.0f} rows/s  "
        f"peak RSS {ingest.peak_mib:,.0f} MiB, backend {ingest.backend_peak_mib:,.0f} MiB"
    )
    print(
        f"  run       {run.seconds:8.1f} s  peak RSS {run.peak_mib:,.0f} MiB "
        f"(estimate {stats['memory_estimate_mib']:,} MiB), backend {run.backend_peak_mib:,.0f} MiB"
    )
    per = {
        "read": stats["interactions"],
        "train": stats["training_steps"] * stats["training_batch_size"],
        "evaluate": stats["test_interactions_evaluated"],
        "score": written,
    }
    for phase, seconds in phases.items():
        rate = f"{per[phase] / seconds:>12,.0f} rows/s" if phase in per and seconds else ""
        print(f"    {phase:8s}{seconds:8.1f} s  {rate}")
    print(
        f"    epochs {stats['training_epochs']}, batch {stats['training_batch_size']:,}; "
        f"evaluate + score {phases['evaluate'] + phases['score']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--epochs-at-20m", type=int, default=2, help="epochs at ≥ 20M interactions")
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("run_options", nargs="*", help="extra options for recsys-job run")
    args = parser.parse_args()
    server = database.parse_url(args.server_url)
    for n in args.sizes:
        epochs = args.epochs_at_20m if n >= 20_000_000 else None
        one_size(server, n, epochs, args.run_options, args.keep)


if __name__ == "__main__":
    main()
