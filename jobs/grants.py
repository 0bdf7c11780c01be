"""``recsys-job db grant-reader``: read-only access for analysts."""

import click

from recsys.storage.grants import grant_reader as grant
from recsys_jobs.context import JobContext, pass_job


@click.command("grant-reader")
@click.argument("role")
@pass_job
def grant_reader(job: JobContext, role: str) -> None:
    """Let ROLE read every table and view in the schema (and nothing more).

    Covers partitions published later too (default privileges of the user running this: use the
    user the jobs run as). ROLE must exist: CREATE ROLE analyst LOGIN PASSWORD '...'.
    """
    with job.engine().begin() as conn:
        owner = grant(conn, role)
    click.echo(f"{role} may now read schema {job.schema}, including tables {owner} creates later")
