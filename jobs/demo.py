"""``recsys-job demo``: the first thing a new user runs; works with no database server."""

import time
from pathlib import Path

import click
import sqlalchemy as sa

from recsys.entry import execute
from recsys.ingest.parse.movielens import parse_movielens
from recsys.run_settings import resolve
from recsys.storage import migrate, schema
from recsys.synthetic.movielens_like import generate
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.ingest import store
from recsys_jobs.progress import epoch_bars
from recsys_jobs.recommend import show_list

DEMO_VERSION = "demo"


@click.command()
@click.option(
    "--movielens",
    "movielens_path",
    type=click.Path(exists=True, path_type=Path),
    help="Load this MovieLens release instead of the built-in synthetic data set.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic data set.")
@click.option(
    "--epochs", type=click.IntRange(min=1), help="Cap training epochs (default: the model's)."
)
@pass_job
def demo(job: JobContext, movielens_path: Path | None, seed: int, epochs: int | None) -> None:
    """Migrate, load MovieLens or a synthetic data set, train and publish version 'demo'."""
    engine = job.engine(require_head=False)
    migrate.upgrade(engine, job.schema)
    started = time.perf_counter()
    data = parse_movielens(movielens_path) if movielens_path else generate(seed=seed)
    store(engine, data, started)
    settings = resolve({"model_version": DEMO_VERSION, "replace": True, "epochs": epochs})
    click.echo(execute(engine, settings, report=click.echo, on_step=epoch_bars()).summary())
    for user_id in _sample_users(engine):
        click.echo()
        show_list(engine, user_id, version=DEMO_VERSION)
    click.echo(
        f"\nNext: `recsys-job versions`, `recsys-job show {DEMO_VERSION}`, "
        f"`recsys-job report {DEMO_VERSION}`; in SQL: "
        f"SELECT * FROM {job.schema}.production_recommendations WHERE user_id = ...; "
        "the views and example queries are described in sql/README.md."
    )


def _sample_users(engine: sa.Engine, count: int = 3) -> list[int]:
    """The first few users by id, to show what a list looks like."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(schema.users.c.user_id).order_by(schema.users.c.user_id).limit(count)
            ).scalars()
        )
