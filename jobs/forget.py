"""``recsys-job forget``: erase users from the inputs and from every stored version."""

import click

from recsys.errors import InvalidInput
from recsys.privacy.forget import forget_users
from recsys_jobs.context import JobContext, pass_job


@click.command()
@click.option(
    "--user",
    "users",
    type=click.IntRange(min=0, max=2**63 - 1),
    multiple=True,
    metavar="ID",
    help="Repeatable.",
)
@click.option(
    "--users-from",
    metavar="QUERY",
    help="A SELECT with a user_id column (e.g. a table of erasure requests); run read-only.",
)
@pass_job
def forget(job: JobContext, users: tuple[int, ...], users_from: str | None) -> None:
    """Erase users: their ratings, user row, and rows in every version's user embeddings and
    recommendations (published, failed or unattached), in one transaction, recorded in the
    erasures table by a salted hash of the id. Database backups and WAL keep what they hold."""
    if not users and users_from is None:
        raise InvalidInput("give --user ID or --users-from QUERY")
    erased = forget_users(job.engine(), users, users_from)
    rows = sum(erased.rows.values())
    by_table: dict[str, int] = {}
    for table, n in erased.rows.items():
        name = table.rsplit("_r", 1)[0] if table not in ("ratings", "users") else table
        by_table[name] = by_table.get(name, 0) + n
    detail = ", ".join(f"{table} {n:,}" for table, n in by_table.items())
    click.echo(f"forgot {erased.users:,} user(s): {rows:,} rows deleted ({detail})")
    if erased.live:
        click.echo(
            "warning: runs in progress for "
            + ", ".join(erased.live)
            + " read their data before this erasure; run forget again once they finish",
            err=True,
        )
