"""``recsys-job db``: schema migrations."""

import click

from recsys.storage import migrate
from recsys_jobs.context import JobContext, pass_job


@click.group()
def db() -> None:
    """Create or migrate the recsys schema (Alembic)."""


@db.command()
@click.argument("revision", default="head")
@pass_job
def upgrade(job: JobContext, revision: str) -> None:
    """Migrate the schema up to REVISION (default: head)."""
    engine = job.engine(require_head=False)
    before = migrate.current_revision(engine, job.schema)
    migrate.upgrade(engine, job.schema, revision)
    after = migrate.current_revision(engine, job.schema)
    if before == after:
        click.echo(f"schema {job.schema} already at {after}")
    else:
        click.echo(f"schema {job.schema} upgraded from {before or 'nothing'} to {after}")


@db.command()
@click.argument("revision")
@pass_job
def downgrade(job: JobContext, revision: str) -> None:
    """Migrate the schema down to REVISION ('base' removes every recsys table)."""
    engine = job.engine(require_head=False)
    before = migrate.current_revision(engine, job.schema)
    migrate.downgrade(engine, job.schema, revision)
    after = migrate.current_revision(engine, job.schema)
    click.echo(f"schema {job.schema} downgraded from {before} to {after or 'base'}")


@db.command()
@pass_job
def current(job: JobContext) -> None:
    """Show the schema's revision and whether it is the one this code expects."""
    engine = job.engine(require_head=False)
    revision = migrate.current_revision(engine, job.schema)
    head = migrate.head_revision()
    state = "at head" if revision == head else f"head is {head}; run `recsys-job db upgrade`"
    click.echo(f"{revision or 'none'} ({state})")
