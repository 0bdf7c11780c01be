"""Shared pieces of the ``recsys-job run`` integration tests: a small ratings set in a schema of
its own, the CLI call, and queries that say what a version left behind in the database.

The data set is synthetic and deterministic, small enough that a run of a few epochs takes about a
second, and has users without ratings so the fallback recommendations are exercised too.
"""

import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from recsys.ingest.load.parsed import load
from recsys.model.settings import TrainConfig
from recsys.run_config import RunConfig
from recsys.storage import database, migrate, schema
from recsys.storage.bulk import schema_of
from recsys.synthetic import movielens_like
from recsys.versions import registry
from recsys_jobs.cli import main

N_RATED_USERS, N_ITEMS, RATINGS_PER_USER, DATA_SEED = 120, 150, 30, 7
#: Users in ``users`` with no ratings at all: the model cannot score them, so they get fallbacks.
UNRATED_USERS = (9001, 9002)
N_USERS = N_RATED_USERS + len(UNRATED_USERS)

#: CLI options that keep a run to about a second (every epoch runs: patience exceeds epochs).
FAST_OPTIONS = ("--epochs", "3", "--dim", "16", "--layers", "2", "--patience", "5")
#: The same settings for in-process runs through ``recsys.pipeline.run``.
FAST_TRAIN = TrainConfig(max_epochs=3, dim=16, n_layers=2, patience=5)


def fast_config(seed: int = 0, **changes: Any) -> RunConfig:
    """A quick run's config with this seed; ``changes`` are other RunConfig fields."""
    return RunConfig(train=dataclasses.replace(FAST_TRAIN, seed=seed), **changes)


def quiet(_: str) -> None:
    """A ``report`` for in-process runs: progress lines are not what the tests look at."""


def populate(engine: sa.Engine) -> None:
    """Ingest the synthetic ratings and add the users without any."""
    load(engine, movielens_like.generate(N_RATED_USERS, N_ITEMS, RATINGS_PER_USER, DATA_SEED))
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.users), [{"user_id": u} for u in UNRATED_USERS])


@contextmanager
def populated_schema(database_url: URL) -> Iterator[tuple[sa.Engine, str]]:
    """A migrated schema holding the synthetic ratings, dropped afterwards.

    Module-scoped fixtures use it so one ingest serves every test that writes its own versions.
    """
    name = f"t_run_{uuid.uuid4().hex[:10]}"
    engine = database.connect(database_url, name)
    try:
        migrate.upgrade(engine, name)
        populate(engine)
        yield engine, name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


def cli(database_url: URL, schema_name: str, *args: str) -> Result:
    """``recsys-job --database-url … --schema … run ARGS`` in this process."""
    url = database_url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, "--schema", schema_name, "run", *args])


def console_script() -> Path:
    """The installed ``recsys-job`` of the interpreter running the tests (venv or CI's)."""
    return Path(sys.executable).with_name("recsys-job")


def subprocess_env(fault: str) -> dict[str, str]:
    """This environment plus a fault, so the child finds the same database and packages."""
    return {**os.environ, "RECSYS_FAULT": fault}


def visible_rows(conn: sa.Connection, version: str) -> dict[str, int]:
    """Rows of ``version`` that a reader of each output table sees."""
    return {
        table.name: conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.version == version)
        ).scalar_one()
        for table in schema.OUTPUT_TABLES
    }


def run_tables(conn: sa.Connection, run_id: int) -> list[str]:
    """Tables of this run's outputs that exist, attached or not."""
    names = [f"{table.name}_r{run_id}" for table in schema.OUTPUT_TABLES]
    return _tables(conn, "c.relname = ANY(:names)", {"names": names})


def stray_tables(conn: sa.Connection) -> list[str]:
    """Output tables of some run that are not attached as a partition: leftovers of a failure."""
    return _tables(conn, r"c.relname ~ '_r[0-9]+$' AND NOT c.relispartition", {})


def _tables(conn: sa.Connection, condition: str, params: dict[str, Any]) -> list[str]:
    query = sa.text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND {condition} ORDER BY 1"
    )
    return list(conn.execute(query, {"schema": schema_of(conn), **params}).scalars())


def version_row(conn: sa.Connection, version: str) -> sa.Row | None:
    versions = schema.model_versions
    return conn.execute(sa.select(versions).where(versions.c.name == version)).first()


def run_rows(conn: sa.Connection, version: str) -> Sequence[sa.Row]:
    """Every attempt at ``version``, oldest first."""
    runs = schema.version_runs
    return conn.execute(
        sa.select(runs).where(runs.c.version == version).order_by(runs.c.run_id)
    ).all()


def recommendations(conn: sa.Connection, version: str) -> list[tuple[int, int, int]]:
    """``(user_id, rank, movie_id)`` of a version, in order."""
    recs = schema.recommendations
    return [
        tuple(row)
        for row in conn.execute(
            sa.select(recs.c.user_id, recs.c.rank, recs.c.movie_id)
            .where(recs.c.version == version)
            .order_by(recs.c.user_id, recs.c.rank)
        )
    ]


def wait_until_not_live(engine: sa.Engine, version: str, timeout: float = 10.0) -> bool:
    """Whether the version's lock is free within ``timeout``: a killed client's backend notices
    the closed socket and ends its session (releasing the lock) shortly after, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            if not registry.is_live(conn, version):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def expect_published(engine: sa.Engine, version: str, top_k: int = 10) -> None:
    """The version is published with a full set of recommendations."""
    with engine.connect() as conn:
        row = version_row(conn, version)
        assert row is not None and row.status == "published", row
        assert visible_rows(conn, version)["recommendations"] == top_k * N_USERS
